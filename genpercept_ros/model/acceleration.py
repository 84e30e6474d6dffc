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
Speed knobs applied to a loaded :class:`GenPerceptPredictor` from the outside.

The predictor already takes ``channels_last`` and ``torch_compile`` and stages its input through
reused pinned buffers; this module adds what it lacks: CUDA-graph capture of the UNets and the
VAE encoder/decoder at static shapes (:func:`apply_cuda_graphs`) and the TF32 switch for fp32 runs
on CUDA (:func:`enable_tf32`). Nothing here changes the arithmetic of a module, so results equal
the eager path up to kernel choice.
"""

import threading

import torch


def enable_tf32(enabled=True):
    """Allow TF32 tensor cores for fp32 matmuls and convolutions on CUDA (no-op on CPU)."""
    torch.backends.cuda.matmul.allow_tf32 = bool(enabled)
    torch.backends.cudnn.allow_tf32 = bool(enabled)


def cuda_graphs_unavailable_reason(device):
    """Return why CUDA graphs cannot run on ``device``, or None when they can."""
    device = torch.device(device)
    if device.type != 'cuda':
        return f'CUDA graphs need a CUDA device; this predictor runs on {device}'
    if not torch.cuda.is_available():
        return 'CUDA graphs need CUDA, which is not available in this torch build or machine'
    return None


class _SampleOutput:
    """Stand-in for diffusers' UNet2DConditionOutput: the caller only reads ``.sample``."""

    __slots__ = ('sample',)

    def __init__(self, sample):
        self.sample = sample


class _Captured:
    __slots__ = ('graph', 'inputs', 'output')

    def __init__(self, graph, inputs, output):
        self.graph, self.inputs, self.output = graph, inputs, output


class CudaGraphModule(torch.nn.Module):
    """
    Replay ``module`` from a CUDA graph captured once per input signature (shapes, dtypes).

    Tensor arguments are copied into static buffers before each replay and the output is
    cloned after it, so results never alias graph memory (graphs may then share one memory
    pool: see :func:`apply_cuda_graphs`). ``sample_output=True`` is for modules returning an
    object with ``.sample`` (diffusers' UNet): the graph holds that tensor and the wrapper
    returns an object with the same attribute. Modules with forward hooks that collect
    outputs (the DPT feature taps) cannot be graphed: the hooks would only run at capture.
    """

    def __init__(self, module, sample_output=False, warmup_calls=2, pool=None):
        super().__init__()
        self.module = module
        self.sample_output = bool(sample_output)
        self.warmup_calls = max(1, int(warmup_calls))
        self.pool = pool
        self._graphs = {}
        self._lock = threading.Lock()

    @staticmethod
    def _signature(args, kwargs):
        items = list(enumerate(args)) + sorted(kwargs.items())
        return tuple(
            (name, tuple(value.shape), value.dtype, value.device)
            if isinstance(value, torch.Tensor) else (name, repr(value))
            for name, value in items)

    def _call(self, args, kwargs):
        result = self.module(*args, **kwargs)
        return result.sample if self.sample_output else result

    def _capture(self, args, kwargs):
        static_args = [value.clone() if isinstance(value, torch.Tensor) else value
                       for value in args]
        static_kwargs = {key: value.clone() if isinstance(value, torch.Tensor) else value
                         for key, value in kwargs.items()}
        # Warm-up on a side stream (cuDNN/cuBLAS workspaces, lazy initialisation) as the
        # torch.cuda.graphs documentation requires before capture.
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(self.warmup_calls):
                self._call(static_args, static_kwargs)
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, pool=self.pool):
            output = self._call(static_args, static_kwargs)
        inputs = [value for value in static_args if isinstance(value, torch.Tensor)]
        inputs += [static_kwargs[key] for key in sorted(static_kwargs)
                   if isinstance(static_kwargs[key], torch.Tensor)]
        return _Captured(graph, inputs, output)

    def forward(self, *args, **kwargs):
        """Copy the inputs into the captured buffers, replay, return a copy of the output."""
        key = self._signature(args, kwargs)
        with self._lock:
            captured = self._graphs.get(key)
            if captured is None:
                captured = self._graphs[key] = self._capture(args, kwargs)
            tensors = [value for value in args if isinstance(value, torch.Tensor)]
            tensors += [kwargs[name] for name in sorted(kwargs)
                        if isinstance(kwargs[name], torch.Tensor)]
            for static, value in zip(captured.inputs, tensors):
                static.copy_(value)
            captured.graph.replay()
            output = captured.output.clone()
        return _SampleOutput(output) if self.sample_output else output

    @property
    def captured_signatures(self):
        """Return the number of graphs captured so far (one per input signature)."""
        return len(self._graphs)


def apply_cuda_graphs(predictor, warmup_calls=2):
    """
    Replace the predictor's UNets and VAE encoder/decoder by :class:`CudaGraphModule` wrappers.

    Graphs are captured on the first ``predict`` per input shape (static shapes: one camera
    size and batch size is one capture; a new size captures again). All graphs of one
    predictor share one memory pool, which is safe because calls never overlap and outputs
    are copied out right after each replay. Raises ValueError on a CPU predictor and for
    DPT-head variants (their feature hooks cannot run inside a graph).
    """
    reason = cuda_graphs_unavailable_reason(predictor.device)
    if reason is not None:
        raise ValueError(reason)
    unets, heads, vaes = _modules_of(predictor)
    if heads:
        raise ValueError('CUDA graphs do not support DPT-head variants (their UNet feature '
                         f'taps are forward hooks): {sorted(heads)}')
    pool = torch.cuda.graph_pool_handle()
    for task in list(unets):
        if not isinstance(unets[task], CudaGraphModule):
            unets[task] = CudaGraphModule(unets[task], sample_output=True,
                                          warmup_calls=warmup_calls, pool=pool)
    for vae in vaes.values():
        if not isinstance(vae.encoder, CudaGraphModule):
            vae.encoder = CudaGraphModule(vae.encoder, warmup_calls=warmup_calls, pool=pool)
        if not isinstance(vae.decoder, CudaGraphModule):
            vae.decoder = CudaGraphModule(vae.decoder, warmup_calls=warmup_calls, pool=pool)
    return predictor


def _modules_of(predictor):
    try:
        return predictor._unets, predictor._heads, predictor._vaes
    except AttributeError as error:
        raise TypeError(f'expected a GenPerceptPredictor, got {type(predictor).__name__}'
                        ) from error
