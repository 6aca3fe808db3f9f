"""Evaluators."""
from mmdet_lite.evaluators.coco_evaluator import (
                                                  COCOEvaluator,
                                                  detections_to_coco,
                                                  evaluate_detections,
                                                  format_summary,
                                                  per_class_table,
)

__all__ = ["COCOEvaluator", "detections_to_coco", "evaluate_detections", "format_summary",
           "per_class_table"]
