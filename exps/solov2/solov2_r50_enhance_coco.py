"""SOLOv2 enhance (R50-vd + DCNv2, light head, 512x852): PaddleDetection
configs/solov2/solov2_r50_enhance_coco.yml.

ResNet50-vd with DCNv2 in res3..res5, trainable BatchNorm (SyncBN over GPUs) and stage LR
multipliers; a 3-conv 256-channel head with a DCN third conv and DropBlock, 128 kernel channels;
a DCN mask-feature tower; the light reader (RandomDistort, RandomCrop, keep-ratio RandomResize of
the short side to 352..512, long side 852); 36 epochs with EMA.
"""
from mmdet_lite.exp import SOLOv2Exp

LIGHT_SIZES = [[352, 852], [384, 852], [416, 852], [448, 852], [480, 852], [512, 852]]


class Exp(SOLOv2Exp):
    def __init__(self):
        super().__init__()
        self.backbone.update(variant="d", freeze_norm=False, norm_type="sync_bn",
                             dcn_v2_stages=[1, 2, 3], lr_mult_list=[0.05, 0.05, 0.1, 0.15])
        self.sync_bn = True
        self.head.update(seg_feat_channels=256, stacked_convs=3, kernel_out_channels=128,
                         dcn_v2_stages=[2], drop_block=True)
        self.mask_head.update(out_channels=128, use_dcn_in_tower=True)
        self.input_size = (512, 852)
        self.test_size = (512, 852)
        self.train_transforms = {"RandomDistort": {}, "RandomCrop": {},
                                 "RandomResize": {"interp": 1, "target_size": LIGHT_SIZES,
                                                  "keep_ratio": True},
                                 "RandomFlip": {}}
        self.data_num_workers = 2
        self.max_epoch = 36
        self.lr_decay.update(milestones=[24, 33])
        self.use_ema = True
        self.ema_decay = 0.9998
