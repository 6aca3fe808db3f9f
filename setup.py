"""mmdet_lite: PaddleDetection's detectors (PP-PicoDet, RT-DETR, SOLOv2) in plain PyTorch."""
from pathlib import Path

from setuptools import find_packages, setup

here = Path(__file__).parent
requirements = [
    line.strip() for line in (here / "requirements.txt").read_text().splitlines()
    if line.strip() and not line.startswith("#")
]

setup(
    name="mmdet_lite",
    version="0.1.0",
    description="YOLOX-style PyTorch toolkit for PaddleDetection's detectors",
    long_description=(here / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["mmdet_lite", "mmdet_lite.*"]),
    python_requires=">=3.9",
    install_requires=requirements,
    license="Apache-2.0",
)
