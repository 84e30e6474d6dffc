# Copyright 2026 genpercept_ros contributors
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#
#     http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS,
# WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
# See the License for the specific language governing permissions and
# limitations under the License.

"""
Inputs of ``genpercept infer``: image files, folders, globs and video files.

Images are read as the reference ``run.py`` reads them, ``PIL.Image.open(path).convert('RGB')``
(8-bit images give exactly the reference's input): grayscale is replicated and alpha is dropped
(not composited). The decoding policy is the ROS node's, so the same pixels reach the model
whichever way they arrive (file, ``Image``, ``CompressedImage``, bag):

- 16-bit images are reduced to 8 bits by dropping the low byte (``v >> 8``), as the node does
  for ``mono16``/``rgb16`` messages and OpenCV for 16-bit PNGs (PIL's own conversion would
  clip 16-bit grayscale at 255, turning most of the image white; 16-bit colour PNGs already
  arrive reduced this way from PIL).
- The EXIF orientation tag is ignored: the stored pixel grid is processed, as the reference
  does and as ``image_transport`` decodes compressed images, so ``--camera-info`` (which
  describes the sensor's grid) stays valid. A note names the ignored tag; rotate such photos
  beforehand (e.g. ``PIL.ImageOps.exif_transpose``) when the displayed orientation matters.

32-bit integer and float images keep PIL's conversion (clipped), with a note. Video frames come
from OpenCV.
"""

from dataclasses import dataclass
import glob
from pathlib import Path

import numpy as np

IMAGE_SUFFIXES = frozenset({
    '.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff', '.webp', '.ppm', '.pgm', '.pnm', '.gif'})
VIDEO_SUFFIXES = frozenset({
    '.mp4', '.avi', '.mov', '.mkv', '.webm', '.m4v', '.mpg', '.mpeg', '.wmv', '.flv'})

_SIXTEEN_BIT_GREY_MODES = frozenset({'I;16', 'I;16B', 'I;16L', 'I;16N'})
_CLIPPED_MODES = frozenset({'I', 'F'})
_EXIF_ORIENTATION = 0x0112


class InputError(ValueError):
    """An input that cannot be read, with the reason."""


@dataclass(frozen=True)
class InputFile:
    """One image or video file to process."""

    path: Path
    is_video: bool

    @property
    def stem(self):
        """Output name prefix of this file (video frames append ``_<index:06d>``)."""
        return self.path.stem


def _classify(path):
    return InputFile(path=path, is_video=path.suffix.lower() in VIDEO_SUFFIXES)


def _media_in_folder(folder):
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES | VIDEO_SUFFIXES)


def expand_inputs(specs):
    """
    Expand files, folders and glob patterns into input files.

    Folders contribute their image and video files (not recursively, sorted by name); a file
    named explicitly is used whatever its suffix. Returns ``(files, errors)``: the files in
    order without duplicates, and one message per argument that matched nothing.
    """
    files, errors, seen = [], [], set()

    def add(path):
        key = path.resolve()
        if key not in seen:
            seen.add(key)
            files.append(_classify(path))

    for spec in specs:
        path = Path(spec)
        if path.is_dir():
            found = _media_in_folder(path)
            if not found:
                errors.append(f'{spec}: folder holds no image or video files')
            for item in found:
                add(item)
        elif path.is_file():
            add(path)
        else:
            matches = sorted(glob.glob(spec, recursive=True))
            matched = [Path(m) for m in matches if Path(m).is_file()]
            for folder in (Path(m) for m in matches if Path(m).is_dir()):
                matched.extend(_media_in_folder(folder))
            if not matched:
                errors.append(f'{spec}: no such file or folder, and no glob match')
            for item in matched:
                add(item)
    return files, errors


def duplicate_stems(files):
    """Return ``{stem: [paths]}`` for output names that two inputs would both write."""
    by_stem = {}
    for item in files:
        by_stem.setdefault(item.stem, []).append(item.path)
    return {stem: paths for stem, paths in by_stem.items() if len(paths) > 1}


def read_image_rgb(path):
    """
    Read an image file; return ``(rgb uint8 HxWx3, note or None)``.

    Decoding policy in the module docstring: the stored grid (EXIF orientation ignored),
    16-bit grayscale reduced by ``v >> 8``, otherwise PIL's ``convert('RGB')``. The note tells
    when an orientation tag was ignored or a 32-bit image was clipped. Raises InputError.
    """
    from PIL import Image
    from PIL import UnidentifiedImageError
    try:
        with Image.open(path) as image:
            mode = image.mode
            orientation = image.getexif().get(_EXIF_ORIENTATION)
            if mode in _SIXTEEN_BIT_GREY_MODES:
                grey = np.asarray(image, dtype=np.uint16)
                rgb = np.repeat((grey >> 8).astype(np.uint8)[..., None], 3, axis=2)
            else:
                rgb = np.array(image.convert('RGB'), dtype=np.uint8)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as error:
        raise InputError(f'{path}: cannot read the image ({error})') from None
    if rgb.ndim != 3 or rgb.shape[0] == 0 or rgb.shape[1] == 0:
        raise InputError(f'{path}: the image is empty')
    notes = []
    if mode in _CLIPPED_MODES:
        notes.append(f'{path}: {mode} image converted like the reference (PIL convert("RGB") '
                     'clips values above 255)')
    if orientation not in (None, 1):
        notes.append(f'{path}: EXIF orientation {orientation} ignored: the stored pixel grid is '
                     'processed (as the ROS node and the reference decode it)')
    return np.ascontiguousarray(rgb), '; '.join(notes) or None


def count_video_frames(path):
    """Return OpenCV's frame count estimate for a video, or 0 when unknown."""
    import cv2
    capture = cv2.VideoCapture(str(path))
    try:
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) if capture.isOpened() else 0
    finally:
        capture.release()
    return max(count, 0)


def iter_video_frames(path):
    """Yield ``(index, rgb uint8 HxWx3)`` for each frame; raise `InputError` if unreadable."""
    import cv2
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        capture.release()
        raise InputError(f'{path}: OpenCV cannot open the video')
    index = 0
    try:
        while True:
            ok, bgr = capture.read()
            if not ok:
                break
            if bgr.ndim == 2:
                bgr = cv2.cvtColor(bgr, cv2.COLOR_GRAY2BGR)
            yield index, np.ascontiguousarray(bgr[:, :, 2::-1])
            index += 1
    finally:
        capture.release()
    if index == 0:
        raise InputError(f'{path}: the video holds no readable frame')


def media_size(item):
    """
    Return ``(width, height)`` of an `InputFile` from its header, or None when unreadable.

    Images: PIL's size (the stored pixel grid, read without decoding the pixels); videos:
    OpenCV's frame size. Used to check a calibration against every input before any work.
    """
    if item.is_video:
        import cv2
        capture = cv2.VideoCapture(str(item.path))
        try:
            if not capture.isOpened():
                return None
            size = (int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)),
                    int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)))
        finally:
            capture.release()
        return size if min(size) > 0 else None
    from PIL import Image
    from PIL import UnidentifiedImageError
    try:
        with Image.open(item.path) as image:
            size = image.size
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        return None
    return size if min(size) > 0 else None
