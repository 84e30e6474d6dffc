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
Process tuning for the node (not a codec): glibc's allocator thresholds.

Hand-written on purpose: glibc's ``mallopt`` has no Python binding in any kept library; the
environment variables ``MALLOC_MMAP_THRESHOLD_`` / ``MALLOC_TRIM_THRESHOLD_`` do the same but
must be set before the process starts, which a ``ros2 run`` user cannot be asked to do.
"""

import ctypes
import ctypes.util
import sys

# mallopt() parameters of glibc's malloc.h.
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


def tune_allocator(mmap_threshold=128 << 20, trim_threshold=256 << 20):
    """
    Keep large freed buffers in the heap so per-frame messages do not page-fault.

    With glibc's defaults every buffer of a few MB (a 640x480 cloud is 8.6 MB) is a fresh
    mmap whose pages fault in on first touch, which on a VM costs more than building the
    message (see BENCHMARKS.md). Raising the mmap and trim thresholds makes freed blocks get
    reused instead; memory stays at the steady-state peak. Process-wide: call once at node
    start. Same effect as ``MALLOC_MMAP_THRESHOLD_`` / ``MALLOC_TRIM_THRESHOLD_`` in the
    environment. Returns True when applied, False where glibc's mallopt is unavailable.
    """
    if not sys.platform.startswith('linux'):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library('c') or 'libc.so.6')
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, int(mmap_threshold))
                and mallopt(_M_TRIM_THRESHOLD, int(trim_threshold)))
