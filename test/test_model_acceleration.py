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

"""The predictor's ``acceleration`` option: checks against eager, one warning, eager fallback."""

import contextlib
import types

from genpercept_ros.model import acceleration
from genpercept_ros.model.acceleration import CudaGraphModule
from genpercept_ros.model.predictor import GenPerceptPredictor
import numpy as np
import pytest
import torch


def _frames(width=64, height=48, count=1):
    rng = np.random.default_rng(3)
    return [rng.integers(0, 256, (height, width, 3), dtype=np.uint8) for _ in range(count)]


def _load(root, acceleration_name, warnings):
    return GenPerceptPredictor.from_pretrained(
        'depth-v2', 'normal-v2', model_root=root, device='cpu', dtype='fp32',
        acceleration=acceleration_name, warn=warnings.append)


def _assert_same_outputs(first, second):
    for name in ('depth_raw', 'normal_raw'):
        for a, b in zip(getattr(first, name), getattr(second, name)):
            np.testing.assert_array_equal(a, b)


class _FakeCompiled(torch.nn.Module):
    """Stands in for torch.compile's result: runs the module, optionally misbehaving."""

    def __init__(self, module, behaviour):
        super().__init__()
        self.module, self.behaviour = module, behaviour

    def forward(self, *args, **kwargs):
        output = self.module(*args, **kwargs)
        return self.behaviour(type(self.module).__name__, args, output)


def _fake_compile(monkeypatch, behaviour):
    compiled = []

    def fake(module, mode=None, dynamic=None):
        compiled.append(type(module).__name__)
        return _FakeCompiled(module, behaviour)

    monkeypatch.setattr(torch, 'compile', fake)
    return compiled


def test_unknown_acceleration_is_a_value_error(tiny_model_root):
    with pytest.raises(ValueError, match='acceleration must be one of auto, eager, compile'):
        _load(tiny_model_root, 'turbo', [])


def test_cuda_graphs_on_cpu_is_one_warning_and_eager_service(tiny_model_root):
    warnings = []
    predictor = _load(tiny_model_root, 'cuda_graphs', warnings)
    eager = _load(tiny_model_root, 'eager', [])
    frames = _frames()
    for _ in range(2):
        _assert_same_outputs(predictor.predict(frames, processing_resolution=64),
                             eager.predict(frames, processing_resolution=64))
    assert len(warnings) == 1
    assert "'cuda_graphs'" in warnings[0] and 'CUDA' in warnings[0] and 'eager' in warnings[0]
    status = predictor.acceleration
    assert (status.requested, status.active) == ('cuda_graphs', 'eager')
    assert 'CUDA' in status.fallback and status.summary().startswith('eager (requested')
    assert all(not isinstance(module, CudaGraphModule) for module in predictor._unets.values())


def test_auto_on_cpu_serves_eager_without_warning(tiny_model_root):
    warnings = []
    predictor = _load(tiny_model_root, 'auto', warnings)
    predictor.predict(_frames(), processing_resolution=64)
    assert warnings == []
    status = predictor.acceleration
    assert status.active == 'eager' and 'cpu' in status.reason and status.checks == []


def test_compile_that_matches_eager_serves_after_its_check(tiny_model_root, monkeypatch):
    compiled = _fake_compile(monkeypatch, lambda _name, _args, output: output)
    warnings = []
    predictor = _load(tiny_model_root, 'compile', warnings)
    frames = _frames(count=2)
    result = predictor.predict(frames, processing_resolution=64)
    status = predictor.acceleration
    assert warnings == [] and status.active == 'compile' and status.fallback is None
    (check,) = status.checks
    assert check['ok'] and check['max_abs_diff'] == 0.0 and check['tolerance'] == 1e-4
    # Every UNet and VAE half went through torch.compile, and serves compiled.
    assert sorted(compiled) == ['Decoder', 'Encoder', 'UNet2DConditionModel',
                                'UNet2DConditionModel']
    assert all(isinstance(module, _FakeCompiled) for module in predictor._unets.values())
    _assert_same_outputs(result, _load(tiny_model_root, 'eager', []).predict(
        frames, processing_resolution=64))


def _perturb_decoder(delta):
    def behaviour(name, _args, output):
        return output + delta if name == 'Decoder' else output
    return behaviour


def test_compile_differing_beyond_fp32_tolerance_falls_back(tiny_model_root, monkeypatch):
    # The decoder's output moves by 1e-3: depth (mean + 1) / 2 moves by 5e-4 > 1e-4 (fp32).
    _fake_compile(monkeypatch, _perturb_decoder(1e-3))
    warnings = []
    predictor = _load(tiny_model_root, 'compile', warnings)
    frames = _frames()
    result = predictor.predict(frames, processing_resolution=64)
    assert len(warnings) == 1 and 'differs from eager by' in warnings[0]
    status = predictor.acceleration
    assert status.active == 'eager' and not status.checks[0]['ok']
    assert 4e-4 < status.checks[0]['max_abs_diff'] < 1e-3
    _assert_same_outputs(result, _load(tiny_model_root, 'eager', []).predict(
        frames, processing_resolution=64))
    predictor.predict(_frames(80, 60), processing_resolution=64)   # no re-check, no warning
    assert len(warnings) == 1 and len(status.checks) == 1


def test_compile_within_tolerance_passes(tiny_model_root, monkeypatch):
    _fake_compile(monkeypatch, _perturb_decoder(2e-5))
    predictor = _load(tiny_model_root, 'compile', [])
    predictor.predict(_frames(), processing_resolution=64)
    assert predictor.acceleration.active == 'compile'
    assert 0 < predictor.acceleration.checks[0]['max_abs_diff'] <= 1e-4


def test_compile_raising_at_its_check_falls_back(tiny_model_root, monkeypatch):
    def broken(name, _args, output):
        raise RuntimeError('inductor: no kernel for this shape')

    _fake_compile(monkeypatch, broken)
    warnings = []
    predictor = _load(tiny_model_root, 'compile', warnings)
    result = predictor.predict(_frames(), processing_resolution=64)
    assert result.depth[0].shape == (48, 64)
    assert len(warnings) == 1 and 'inductor: no kernel for this shape' in warnings[0]
    assert predictor.acceleration.active == 'eager'
    assert 'RuntimeError' in predictor.acceleration.checks[0]['error']


def test_new_shape_is_checked_again_and_can_fall_back(tiny_model_root, monkeypatch):
    def wrong_for_wide_inputs(name, args, output):
        if name == 'Decoder' and args[0].shape[-1] > 8:
            return output + 0.5
        return output

    _fake_compile(monkeypatch, wrong_for_wide_inputs)
    warnings = []
    predictor = _load(tiny_model_root, 'compile', warnings)
    predictor.predict(_frames(64, 48), processing_resolution=64)   # latent width 8: fine
    assert predictor.acceleration.active == 'compile' and warnings == []
    frames = _frames(128, 96)
    result = predictor.predict(frames, processing_resolution=128)  # latent width 16: wrong
    assert predictor.acceleration.active == 'eager' and len(warnings) == 1
    assert [check['ok'] for check in predictor.acceleration.checks] == [True, False]
    _assert_same_outputs(result, _load(tiny_model_root, 'eager', []).predict(
        frames, processing_resolution=128))


def test_fast_path_raising_while_serving_switches_to_eager(tiny_model_root, monkeypatch):
    state = {'fail': False}

    def fails_later(name, _args, output):
        if name == 'Decoder' and state['fail']:
            raise RuntimeError('CUDA error: an illegal memory access was encountered')
        return output

    _fake_compile(monkeypatch, fails_later)
    warnings = []
    predictor = _load(tiny_model_root, 'compile', warnings)
    frames = _frames()
    predictor.predict(frames, processing_resolution=64)     # check + first frame: compiled
    assert predictor.acceleration.active == 'compile'
    state['fail'] = True
    result = predictor.predict(frames, processing_resolution=64)
    assert predictor.acceleration.active == 'eager' and len(warnings) == 1
    assert 'raised while serving' in warnings[0] and 'illegal memory access' in warnings[0]
    _assert_same_outputs(result, _load(tiny_model_root, 'eager', []).predict(
        frames, processing_resolution=64))
    predictor.predict(frames, processing_resolution=64)
    assert len(warnings) == 1


def test_out_of_memory_is_not_a_fast_path_failure(tiny_model_root, monkeypatch):
    def out_of_memory(name, _args, output):
        if name == 'Decoder':
            raise torch.OutOfMemoryError('CUDA out of memory')
        return output

    _fake_compile(monkeypatch, out_of_memory)
    warnings = []
    predictor = _load(tiny_model_root, 'compile', warnings)
    with pytest.raises(torch.OutOfMemoryError):
        predictor.predict(_frames(), processing_resolution=64)
    assert warnings == []


def test_check_frames_have_texture_and_differ_per_batch_entry():
    frames = acceleration.check_frames(48, 64, 3)
    assert [frame.shape for frame in frames] == [(48, 64, 3)] * 3
    assert all(frame.dtype == np.uint8 and frame.std() > 20 for frame in frames)
    assert not np.array_equal(frames[0], frames[1])


# ------------------------------------------------------------------------ devices
class _CudaRecorder:
    """Fake torch.cuda objects that record the device each one is created under."""

    def __init__(self):
        self.current = [0]
        self.created = []

    def _device(self, device=None):
        if device is None:
            return self.current[-1]
        return torch.device(device).index if not isinstance(device, int) else device

    @contextlib.contextmanager
    def device_scope(self, device):
        self.current.append(self._device(device))
        try:
            yield
        finally:
            self.current.pop()

    def record(self, kind, device=None):
        self.created.append((kind, self._device(device)))
        return _FakeCudaObject()

    def install(self, monkeypatch):
        cuda = torch.cuda
        monkeypatch.setattr(cuda, 'is_available', lambda: True)
        monkeypatch.setattr(cuda, 'device_count', lambda: 2)
        monkeypatch.setattr(cuda, 'device', self.device_scope)
        monkeypatch.setattr(cuda, 'Stream', lambda device=None, **_: self.record('Stream',
                                                                                 device))
        monkeypatch.setattr(cuda, 'current_stream',
                            lambda device=None: self.record('current_stream', device))
        monkeypatch.setattr(cuda, 'stream', lambda _stream: contextlib.nullcontext())
        monkeypatch.setattr(cuda, 'Event', lambda **_: self.record('Event'))
        monkeypatch.setattr(cuda, 'CUDAGraph', lambda **_: self.record('CUDAGraph'))
        monkeypatch.setattr(cuda, 'graph_pool_handle', lambda: self.record('graph_pool'))

        @contextlib.contextmanager
        def graph(_graph, pool=None, stream=None, **_):
            assert stream is not None, 'the capture stream must be given (not the default)'
            self.record('graph_capture')
            yield

        monkeypatch.setattr(cuda, 'graph', graph)


class _FakeCudaObject:
    def wait_stream(self, _other):
        return None

    def replay(self):
        return None

    def record(self, stream=None):
        return None

    def synchronize(self):
        return None


def test_every_cuda_object_is_created_under_the_predictors_device(monkeypatch):
    recorder = _CudaRecorder()
    recorder.install(monkeypatch)
    device = torch.device('cuda', 1)
    module = CudaGraphModule(torch.nn.Linear(4, 2), pool=acceleration.graph_pool(device),
                             device=device)
    inputs = torch.randn(3, 4)
    output = module(inputs)
    torch.testing.assert_close(output, module.module(inputs))
    acceleration.record_event(device)
    with acceleration.cuda_device_scope(device):
        pass
    kinds = {kind for kind, _ in recorder.created}
    assert {'Stream', 'current_stream', 'CUDAGraph', 'graph_capture', 'graph_pool',
            'Event'} <= kinds
    wrong = [(kind, index) for kind, index in recorder.created if index != 1]
    assert wrong == [], f'created on the current device (0) instead of cuda:1: {wrong}'
    assert recorder.current == [0]


def test_both_tasks_decode_in_one_batched_call_with_the_same_results(tiny_model_root):
    predictor = _load(tiny_model_root, 'eager', [])
    assert predictor.batch_decoders is False      # default on a CPU; on CUDA True
    predictor.batch_decoders = True
    decoder = next(iter(predictor._vaes.values())).decoder
    batches = []
    decoder.register_forward_hook(
        lambda _module, inputs, _output: batches.append(inputs[0].shape[0]))
    frames = _frames(count=2)
    together = predictor.predict(frames, processing_resolution=64)
    assert batches == [4]            # 2 frames x (depth, normal), one call
    predictor.batch_decoders = False
    apart = predictor.predict(frames, processing_resolution=64)
    assert batches == [4, 2, 2]
    for name in ('depth_raw', 'normal_raw'):
        for a, b in zip(getattr(together, name), getattr(apart, name)):
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-5)


def _fake_clock(monkeypatch):
    """Replace the accelerator's clock by one that only the fake fast path moves."""
    clock = {'now': 0.0}
    monkeypatch.setattr(acceleration, 'time',
                        types.SimpleNamespace(perf_counter=lambda: clock['now']))
    return clock


@pytest.mark.parametrize('compile_cost_s, expected', [(1.5, 'eager'), (-1.5, 'compile')])
def test_auto_picks_the_fastest_path_that_passes_and_says_why(
        tiny_model_root, monkeypatch, compile_cost_s, expected):
    # Let auto try the fast paths on this CPU. On a fake clock eager takes 0 s and the
    # (faked, correct) compile path +-1.5 s per decoder call; CUDA graphs cannot run here.
    monkeypatch.setattr(acceleration, 'AUTO_DEVICE_TYPES', ('cpu', 'cuda'))
    clock = _fake_clock(monkeypatch)

    def timed(name, _args, output):
        if name == 'Decoder':
            clock['now'] += compile_cost_s
        return output

    _fake_compile(monkeypatch, timed)
    warnings = []
    predictor = _load(tiny_model_root, 'auto', warnings)
    predictor.predict(_frames(), processing_resolution=64)
    status = predictor.acceleration
    assert warnings == [] and status.active == expected and status.fallback is None
    checks = {check['path']: check for check in status.checks}
    assert set(checks) == {'compile'} and checks['compile']['ok']
    assert status.reason.startswith('auto: fastest path that passed its check')
    assert 'eager 0.0 ms' in status.reason and 'compile' in status.reason
    assert 'cuda_graphs: CUDA graphs need a CUDA device' in status.reason
    served_compiled = all(isinstance(module, _FakeCompiled)
                          for module in predictor._unets.values())
    assert served_compiled == (expected == 'compile')


def test_auto_with_every_fast_path_failing_warns_once(tiny_model_root, monkeypatch):
    monkeypatch.setattr(acceleration, 'AUTO_DEVICE_TYPES', ('cpu', 'cuda'))
    _fake_compile(monkeypatch, _perturb_decoder(0.5))
    warnings = []
    predictor = _load(tiny_model_root, 'auto', warnings)
    predictor.predict(_frames(), processing_resolution=64)
    assert len(warnings) == 1 and "acceleration 'auto'" in warnings[0]
    assert 'differs from eager' in warnings[0] and 'CUDA' in warnings[0]
    assert predictor.acceleration.active == 'eager'
