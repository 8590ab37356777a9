"""Central crops of City100 pairs, same layout and names (NNNH.PNG / NNNL.PNG), for carrying a small copy of the
data to a training machine: the City100 GPU runs of docs/results.md (options/train_city100gpu_*.yml) train and
validate on the 640x640 crops of 001-040 in datasets/City100_NikonD5500_center640, made by

    python scripts/city100_center_crops.py --src datasets/City100_NikonD5500 --out datasets/City100_NikonD5500_center640

(scripts/city100_gpu_runs.sh runs that where the folder is missing). The crop's top-left corner is a multiple of 4,
so that ``lr_downscale`` 2 or 4 samples the same LR grid as on the whole image. ``--size`` (default 640) sets the
crop's side.
"""
import argparse
import os
import re

import cv2

NAME = re.compile(r'^\d+[HL]\.png$', re.IGNORECASE)


def center_crop(img, size, multiple=4):
    h, w = img.shape[:2]
    if h < size or w < size:
        raise ValueError(f'image {w}x{h} is smaller than the crop {size}x{size}')
    top, left = (h - size) // 2 // multiple * multiple, (w - size) // 2 // multiple * multiple
    return img[top:top + size, left:left + size]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--src', required=True, help='City100 folder (NNNH.PNG, NNNL.PNG)')
    parser.add_argument('--out', required=True,
                        help='output folder (must not be --src), e.g. datasets/City100_NikonD5500_center640')
    parser.add_argument('--size', type=int, default=640)
    args = parser.parse_args()
    if os.path.realpath(args.src) == os.path.realpath(args.out):
        parser.error('--out must differ from --src')
    os.makedirs(args.out, exist_ok=True)
    names = sorted(n for n in os.listdir(args.src) if NAME.match(n))
    for name in names:
        img = cv2.imread(os.path.join(args.src, name), cv2.IMREAD_UNCHANGED)
        if img is None:
            raise SystemExit(f'{os.path.join(args.src, name)}: cannot decode image')
        cv2.imwrite(os.path.join(args.out, name), center_crop(img, args.size))
    print(f'{len(names)} images cropped to {args.size}x{args.size} into {args.out}')


if __name__ == '__main__':
    main()
