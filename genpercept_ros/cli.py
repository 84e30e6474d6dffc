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
The `genpercept` command line.

Each sub-command lives in its own module, which provides ``add_arguments(parser)`` and
``run(args) -> int``. Those modules import torch lazily inside ``run`` so that ``--help``
stays fast.
"""

import argparse
import importlib
import sys

SUBCOMMANDS = (
    ('infer', 'genpercept_ros.offline.infer',
     'Run GenPercept on images, folders, globs or video files.'),
    ('bag', 'genpercept_ros.offline.bag',
     'Process a rosbag2 (sqlite3 or MCAP) into a new bag with depth, normals and clouds.'),
    ('download', 'genpercept_ros.model.download',
     'Download the weights of the chosen variants into a model root or the HF cache.'),
    ('make-tiny-weights', 'genpercept_ros.model.tiny_weights',
     'Write randomly initialised checkpoints in the real layout (tests, benchmarks).'),
    ('demo', 'genpercept_ros.offline.demo',
     'Synthetic camera -> genpercept node -> recorder, end to end, into demo_output/.'),
)


def build_parser():
    """Build the argument parser with every available sub-command."""
    parser = argparse.ArgumentParser(
        prog='genpercept',
        description='GenPercept one-step diffusion depth and normals: offline tools.')
    sub = parser.add_subparsers(dest='command', metavar='COMMAND')
    for name, module_name, help_text in SUBCOMMANDS:
        module = importlib.import_module(module_name)
        command = sub.add_parser(name, help=help_text, description=help_text)
        module.add_arguments(command)
        command.set_defaults(_run=module.run)
    return parser


def main(argv=None):
    """Entry point of the `genpercept` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, '_run', None):
        parser.print_help()
        return 2
    try:
        return int(args._run(args) or 0)
    except KeyboardInterrupt:
        print('genpercept: interrupted', file=sys.stderr)
        return 130


if __name__ == '__main__':
    sys.exit(main())
