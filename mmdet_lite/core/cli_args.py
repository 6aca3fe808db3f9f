"""Argument parsers of the command-line tools (YOLOX-compatible flags; README.md shows them)."""
import argparse
import sys

__all__ = ["train_parser", "eval_parser", "demo_parser", "convert_parser", "export_parser",
           "shapes_dataset_parser", "voc2coco_parser", "check_dataset_parser",
           "shapes_demo_parser", "parse_args", "str2bool", "split_opts"]


class _Parser(argparse.ArgumentParser):
    """argparse with its errors as one ``error:`` line naming the tool (exit 2), like the tools'
    own errors; ``--help`` still prints the usage."""

    def error(self, message):
        print(f"error: {self.prog}: {message} (see --help)", file=sys.stderr)
        sys.exit(2)


def str2bool(text):
    """``"True"/"False"`` (also ``true/false/1/0/yes/no``) -> bool (``--only_backbone True``)."""
    word = str(text).strip().lower()
    if word in ("true", "1", "yes"):
        return True
    if word in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected True or False, got {text!r}")


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _exp_file_args(parser):
    parser.add_argument("-f", "--exp_file", default=None, help="experiment file, e.g. "
                        "exps/picodet/picodet_s_416_coco_lcnet.py")
    parser.add_argument("-n", "--name", default=None, help="exp name under exps/ (instead of -f)")


def _exp_args(parser, ckpt_help="checkpoint (.pth: {'model': state_dict, ...} or a state dict)"):
    _exp_file_args(parser)
    parser.add_argument("-c", "--ckpt", required=True, help=ckpt_help)


def _device_arg(parser):
    parser.add_argument("--device", default=None, choices=["gpu", "cpu"],
                        help="gpu or cpu (default: gpu when CUDA is available, else cpu)")


def _device_args(parser):
    _device_arg(parser)
    parser.add_argument("--fp16", action="store_true", help="half-precision inference (GPU only)")
    parser.add_argument("--fuse", action="store_true",
                        help="fold BatchNorm into the convolutions (faster inference)")


def _tsize_arg(parser):
    parser.add_argument("--tsize", default=None, help="test size: S or H,W (sets exp.test_size)")


def _dist_args(parser):
    parser.add_argument("--num_machines", type=_positive_int, default=1)
    parser.add_argument("--machine_rank", type=int, default=0)
    parser.add_argument("--dist-url", dest="dist_url", default="auto",
                        help="tcp://HOST:PORT of machine 0 for multi-machine runs")


def _opts_arg(parser, example="num_classes 5 head.nms.keep_top_k 50"):
    parser.epilog = f"Trailing KEY VALUE pairs override exp fields, e.g. {example}."


def _is_number(text):
    try:
        float(text)
    except ValueError:
        return False
    return True


def parse_args(parser, argv=None):
    """Parse the flags; the remaining words become ``args.opts`` (``KEY VALUE ...``).

    A remaining word that looks like a flag (``--sav_result``) is an error, as in argparse.
    """
    args, rest = parser.parse_known_args(argv)
    rest = rest[1:] if rest[:1] == ["--"] else rest
    unknown = [w for w in rest if w.startswith("-") and not _is_number(w)]
    if unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    args.opts = rest
    return args


def split_opts(opts):
    """``args.opts`` as a list of strings (also accepts None)."""
    return [str(o) for o in (opts or [])]


def train_parser():
    parser = _Parser("mmdet_lite train", description="train a detector")
    _exp_file_args(parser)
    parser.add_argument("-d", "--devices", type=_positive_int, default=1,
                        help="processes on this machine (GPUs with --device gpu)")
    parser.add_argument("-b", "--batch-size", dest="batch_size", type=_positive_int, default=None,
                        help="total batch over all devices (default: train_batch_size per device)")
    parser.add_argument("-eb", "--eval-batch-size", dest="eval_batch_size", type=_positive_int,
                        default=None, help="total eval batch (default: eval_batch_size per device)")
    parser.add_argument("-w", "--workers", type=int, default=None,
                        help="training data-loader workers per process (default: data_num_workers)")
    parser.add_argument("-ew", "--eval-workers", dest="eval_workers", type=int, default=None,
                        help="evaluation data-loader workers per process (default: as -w)")
    parser.add_argument("-c", "--ckpt", default=None,
                        help="checkpoint: initial weights, or the run to continue with --resume")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run of -c (default: the newest latest_ckpt.pth of the "
                             "exp's runs under output_dir)")
    parser.add_argument("-expn", "--experiment-name", dest="experiment_name", default=None,
                        help="the run folder's name under output_dir (default: the exp name; "
                             "<name>_2, _3 ... when it holds an earlier run)")
    parser.add_argument("--exist-ok", dest="exist_ok", action="store_true",
                        help="write into the run folder even if it holds an earlier run")
    parser.add_argument("--allow-other-exp", dest="allow_other_exp", action="store_true",
                        help="--resume a checkpoint that another exp wrote")
    parser.add_argument("--fp16", action="store_true", help="mixed precision (GPU only)")
    parser.add_argument("--sync_bn", action="store_true", help="SyncBatchNorm over GPUs")
    _device_arg(parser)
    _dist_args(parser)
    _opts_arg(parser, "max_epoch 100 base_lr 0.01 num_classes 5")
    return parser


def eval_parser():
    parser = _Parser("mmdet_lite eval",
                                     description="COCO evaluation of a checkpoint")
    _exp_args(parser)
    parser.add_argument("-d", "--devices", type=_positive_int, default=1,
                        help="processes (GPUs with --device gpu) the images are sharded over")
    parser.add_argument("-b", "--batch-size", dest="batch_size", type=_positive_int, default=None,
                        help="total batch over all devices (default: the exp's eval_batch_size)")
    parser.add_argument("-w", "--workers", type=int, default=2,
                        help="data-loader workers per process")
    parser.add_argument("--conf", type=float, default=None,
                        help="score threshold of the NMS (PicoDet: head.nms.score_threshold)")
    parser.add_argument("--nms", type=float, default=None, help="IoU threshold of the NMS "
                        "(PicoDet: head.nms.nms_threshold)")
    _tsize_arg(parser)
    _device_args(parser)
    _dist_args(parser)
    _opts_arg(parser)
    return parser


def demo_parser():
    parser = _Parser("mmdet_lite demo", description="detect objects in images or "
                                     "videos")
    parser.add_argument("demo", choices=["image", "video", "webcam"], help="input kind")
    _exp_args(parser)
    parser.add_argument("--path", default=None, help="image file, folder of images, or video file")
    parser.add_argument("--camid", type=int, default=0, help="webcam id")
    parser.add_argument("--conf", type=float, default=0.3, help="minimum score drawn / printed")
    _tsize_arg(parser)
    parser.add_argument("--save_result", action="store_true",
                        help="save drawn results under <folder>/vis_res/<time>/: the training "
                             "folder of -c (train_log.txt beside it) unless output_dir is given, "
                             "else <output_dir>/<exp_name>")
    _device_args(parser)
    _opts_arg(parser)
    return parser


def convert_parser():
    parser = _Parser("mmdet_lite convert_weights",
                                     description="convert a PaddleDetection .pdparams checkpoint")
    _exp_args(parser, ckpt_help="input Paddle weights (.pdparams)")
    parser.add_argument("-oc", "--output_ckpt", required=True, help="output checkpoint (.pth)")
    parser.add_argument("-nc", "--num_classes", type=_positive_int, default=None,
                        help="classes of the model (default: the exp's num_classes)")
    parser.add_argument("--only_backbone", type=str2bool, default=False,
                        help="True: convert the backbone only (ImageNet-pretrained weights)")
    _opts_arg(parser)
    return parser


def export_parser():
    parser = _Parser("mmdet_lite export_onnx",
                                     description="export a detector to ONNX")
    _exp_args(parser)
    parser.add_argument("--output-name", dest="output_name", default=None,
                        help="output .onnx file (default: <exp_name>.onnx)")
    parser.add_argument("--no-postprocess", dest="postprocess", action="store_false",
                        help="export the raw head outputs (scores, bboxes) without NMS")
    parser.add_argument("--dynamic", action="store_true",
                        help="dynamic batch size and image height / width")
    parser.add_argument("--opset", type=int, default=17, help="ONNX opset (11 or newer)")
    parser.add_argument("--batch-size", dest="batch_size", type=_positive_int, default=1,
                        help="batch size of the exported input (without --dynamic)")
    _tsize_arg(parser)
    parser.add_argument("--check-image", dest="check_image", default=None,
                        help="image for the onnxruntime check (default: random pixels)")
    _opts_arg(parser)
    return parser


def check_dataset_parser():
    parser = _Parser("mmdet_lite check_dataset",
                                     description="check that every image of an exp's datasets "
                                                 "can be read")
    _exp_file_args(parser)
    parser.add_argument("--splits", nargs="+", choices=["train", "val"], default=["train", "val"])
    parser.add_argument("--decode", action="store_true",
                        help="decode every pixel (finds truncated files; slower)")
    parser.add_argument("--threads", type=_positive_int, default=8)
    _opts_arg(parser)
    return parser


def shapes_dataset_parser():
    parser = _Parser("mmdet_lite make_shapes_dataset",
                                     description="generate the synthetic COCO-format shapes set")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--num-train", type=int, default=300)
    parser.add_argument("--num-val", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    return parser


def voc2coco_parser():
    parser = _Parser("mmdet_lite voc2coco",
                                     description="convert a Pascal VOC split to COCO format")
    parser.add_argument("--voc-root", required=True, help="e.g. VOCdevkit/VOC2007")
    parser.add_argument("--split", required=True,
                        help="a list in ImageSets/Main: trainval, test, ...")
    parser.add_argument("--out", required=True, help="output COCO json")
    parser.add_argument("--label-list", default=None,
                        help="label_list.txt (relative to --voc-root or absolute); "
                             "default: 20 VOC classes")
    return parser


def shapes_demo_parser():
    parser = _Parser("mmdet_lite run_demo",
                                     description="train, evaluate and draw PicoDet-XS on the "
                                                 "shapes set, on the CPU")
    parser.add_argument("--data-dir", default="datasets/shapes",
                        help="the shapes dataset (generated there when missing)")
    parser.add_argument("--output-dir", default="outputs", help="output_dir of the exp")
    parser.add_argument("--device", default="cpu", choices=["gpu", "cpu"])
    parser.add_argument("--write-assets", action="store_true",
                        help="only (re)write assets/shapes_*.jpg with the generator")
    _opts_arg(parser)
    return parser
