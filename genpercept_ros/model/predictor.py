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
GenPerceptPredictor: one VAE encode, one UNet pass per task, decode, reference post-processing.

Out of GPU memory during ``predict`` raises ``torch.OutOfMemoryError`` unchanged (no partial
result is returned), so callers can catch it, call :meth:`GenPerceptPredictor.free_memory` and
drop the frame.
"""

from dataclasses import dataclass
from dataclasses import field
import gc
import threading
import time

from genpercept_ros.model.acceleration import Accelerator
from genpercept_ros.model.acceleration import check_frames
from genpercept_ros.model.acceleration import cuda_device_scope
from genpercept_ros.model.acceleration import record_event
from genpercept_ros.model.conditioning import empty_prompt_embedding
from genpercept_ros.model.loaders import load_dpt_head
from genpercept_ros.model.loaders import load_scheduler
from genpercept_ros.model.loaders import load_taesd
from genpercept_ros.model.loaders import load_unet
from genpercept_ros.model.loaders import load_vae
from genpercept_ros.model.postprocess import normals_to_optical
from genpercept_ros.model.postprocess import postprocess
from genpercept_ros.model.postprocess import raw_layout
from genpercept_ros.model.precision import keep_decoder_output_fp32
from genpercept_ros.model.precision import keep_dpt_head_output_fp32
from genpercept_ros.model.preprocess import preprocess_float
from genpercept_ros.model.preprocess import preprocess_v1
from genpercept_ros.model.preprocess import preprocess_v2
from genpercept_ros.model.registry import DECODER_TAESD
from genpercept_ros.model.registry import DECODER_VAE
from genpercept_ros.model.registry import DECODERS
from genpercept_ros.model.registry import DEFAULT_PROCESSING_RESOLUTION
from genpercept_ros.model.registry import get_model_spec
from genpercept_ros.model.registry import LOTUS_D
from genpercept_ros.model.registry import PRE_FLOAT_BILINEAR
from genpercept_ros.model.registry import PRE_PIL_BICUBIC
from genpercept_ros.model.registry import TAESD_LICENCE
from genpercept_ros.model.registry import TAESD_REPO
from genpercept_ros.model.registry import X0_NEGATIVE_V
from genpercept_ros.model.registry import X0_SAMPLE
from genpercept_ros.model.registry import X0_V_PREDICTION
from genpercept_ros.model.runtime import as_image_list
from genpercept_ros.model.runtime import DTYPE_NAMES
from genpercept_ros.model.runtime import OutOfMemoryError  # noqa: F401 - re-exported
from genpercept_ros.model.runtime import place_module
from genpercept_ros.model.runtime import resolve_device
from genpercept_ros.model.runtime import resolve_dtype
from genpercept_ros.model.runtime import Stopwatch
from genpercept_ros.model.runtime import vae_dtype_for
from genpercept_ros.model.sizes import processing_size
from genpercept_ros.model.weights import WeightsError
from genpercept_ros.model.weights import WeightsLocator
import numpy as np
import torch


OUTPUT_RESOLUTIONS = ('input', 'processing')
MAX_STAGING_SHAPES = 8
# Key of TAESD in the predictor's decoder-model table (the repo root holds it).
TAESD_KEY = (TAESD_REPO, '')


@dataclass
class PredictionOutput:
    """
    Result of one :meth:`GenPerceptPredictor.predict` call, one list entry per input image.

    ``depth``: HxW float32 in [0, 1] (``depth_kind`` says far = 1 'relative_depth' or
    near = 1 'relative_disparity'); ``normals``: HxWx3 float32 unit vectors in the ROS optical
    frame (x right, y down, z forward), NaN where invalid; ``depth_raw``/``normal_raw``: what the
    model's reference code saves (v2 depth HxW in [0, 1], v2 and Lotus-D normals HxWx3
    (n + 1) / 2, v1 and E2E-FT normals 3xHxW in [-1, 1]; the depth arrays are shared with
    ``depth``, copy before editing in place); ``processing_size``: (h, w) the model ran at;
    ``timings``: stage -> seconds for the whole call.
    """

    depth: list = None
    depth_kind: str = None
    normals: list = None
    depth_raw: list = None
    normal_raw: list = None
    processing_size: list = field(default_factory=list)
    timings: dict = field(default_factory=dict)
    depth_model: str = None
    normal_model: str = None


@dataclass(frozen=True)
class DenoisingStep:
    """
    The one UNet pass of a model, as its reference code runs it.

    ``timestep``: the UNet's timestep; ``x0_from``: X0_NEGATIVE_V (x0 = -v, GenPercept),
    X0_V_PREDICTION (x0 = sqrt(a_t) z_t - sqrt(1 - a_t) v with z_t the zero latent, E2E-FT) or
    X0_SAMPLE (the output is x0, Lotus-D); ``x0_from_output``: the factor x0 = factor * output
    (-sqrt(1 - a_t) from the scheduler's ``alphas_cumprod`` for E2E-FT); ``class_labels``: the
    Lotus task switcher ``[sin s..., cos s...]`` (empty for the others).
    """

    timestep: int
    x0_from: str
    x0_from_output: float
    class_labels: tuple = ()


def denoising_step(spec, scheduler=None):
    """
    Return the DenoisingStep of ``spec``; E2E-FT needs its (trailing) DDIMScheduler.

    The E2E-FT factor follows ``DDIMScheduler.step``: ``alpha_prod_t = alphas_cumprod[t]`` in
    float32, ``pred_original_sample = alpha_prod_t ** 0.5 * sample - beta_prod_t ** 0.5 *
    model_output`` with ``sample`` the zero latent (``noise='zeros'``, one step).
    """
    labels = ()
    if spec.task_switcher:
        # Lotus infer.py: task_emb = cat([sin(t), cos(t)]) of the float32 tensor [1, 0].
        values = torch.tensor(spec.task_switcher, dtype=torch.float32)
        labels = tuple(torch.cat([torch.sin(values), torch.cos(values)]).tolist())
    if spec.x0_from == X0_V_PREDICTION:
        if scheduler is None:
            raise ValueError(f'{spec.name} needs its DDIM scheduler for the timestep and alphas')
        scheduler.set_timesteps(1)
        timestep = int(scheduler.timesteps[0])
        beta = 1 - scheduler.alphas_cumprod[timestep]
        return DenoisingStep(timestep, spec.x0_from, -float(beta ** 0.5), labels)
    factor = -1.0 if spec.x0_from == X0_NEGATIVE_V else 1.0
    return DenoisingStep(spec.timestep, spec.x0_from, factor, labels)


def _same_weights(first, second):
    """Return True when two modules have equal public config and bit-identical tensors."""
    if first is second:
        return True
    public = [{key: value for key, value in dict(module.config).items()
               if not key.startswith('_')} for module in (first, second)]
    if public[0] != public[1]:
        return False
    state, other = first.state_dict(), second.state_dict()
    return state.keys() == other.keys() and all(
        state[key].dtype == other[key].dtype and state[key].shape == other[key].shape
        and torch.equal(state[key], other[key]) for key in state)


class GenPerceptPredictor:
    """
    Hold the VAE(s) once and one UNet (+ DPT head) per enabled task; see ``predict``.

    Depth and normals may come from different families (GenPercept, E2E-FT, Lotus-D). Two VAEs
    with bit-identical weights are loaded as one module, and tasks whose input recipe and VAE
    agree share one VAE encode per frame (:meth:`encode_groups`).

    ``latent_generator``: None (default) encodes every image to the VAE posterior mean, a
    deterministic latent. Lotus-D's reference draws a random posterior sample
    (``latent_dist.sample()``) instead; set a ``torch.Generator`` here to reproduce that draw
    (one draw per encode, on the generator's device).
    """

    def __init__(self, specs, unets, heads, vaes, conditionings, device, dtype,
                 channels_last=False, max_batch_size=8, model_root=None, profile=False,
                 steps=None, acceleration='eager', warn=None, compile_mode=None,
                 decoder=DECODER_VAE):
        if decoder not in DECODERS:
            raise ValueError(f'decoder must be one of {", ".join(DECODERS)}, got {decoder!r}')
        self._specs = specs                      # task -> ModelSpec
        self._unets = unets                      # task -> UNet2DConditionModel
        self._heads = heads                      # task -> DPTHead
        # (repo, subfolder) -> AutoencoderKL (shared), plus TAESD_KEY -> AutoencoderTiny when the
        # fast decoder is used (one table, so acceleration wraps its decoder like the VAE's).
        self._vaes = vaes
        self._decoder = decoder
        if decoder == DECODER_TAESD and TAESD_KEY not in vaes and any(
                not spec.has_dpt_head for spec in specs.values()):
            raise ValueError("decoder 'taesd' needs the TAESD model in vaes[TAESD_KEY]")
        self._conditionings = conditionings      # (text repo, kind) -> [1, S, D] on device
        self._steps = steps or {task: denoising_step(spec) for task, spec in specs.items()}
        self._latent_scales = {id(vae): float(vae.config.scaling_factor)
                               for vae in vaes.values()}
        self._x0_factors = {task: torch.tensor(step.x0_from_output, dtype=torch.float32,
                                               device=device)
                            for task, step in self._steps.items()}
        self._class_labels = {task: torch.tensor([step.class_labels], device=device, dtype=dtype)
                              for task, step in self._steps.items() if step.class_labels}
        self.latent_generator = None
        self._device = device
        self._dtype = dtype
        self._vae_dtype = vae_dtype_for(dtype)
        self._memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.max_batch_size = max(1, int(max_batch_size))
        # Decode both tasks' latents in one call (see _decode): on CUDA, where it saves a
        # decoder's worth of kernel launches. Off on a CPU, where it gains nothing and batched
        # convolution kernels would make depth differ in the last bits (~1e-6) between a
        # depth-only and a depth + normal predictor. Off also halves the decoder's activation
        # peak of depth + normal runs.
        self.batch_decoders = torch.device(device).type == 'cuda'
        self.model_root = model_root
        self.profile = profile
        self._features = {}
        self._pinned = {}
        self._predict_lock = threading.Lock()
        # The decoders' last layers run in fp32 whatever the dtype (model/precision.py).
        for vae in vaes.values():
            keep_decoder_output_fp32(vae)
        for head in heads.values():
            keep_dpt_head_output_fp32(head)
        for task, spec in specs.items():
            if spec.has_dpt_head:
                self._install_feature_taps(task, unets[task])
        self._accelerator = Accelerator(self, acceleration, warn=warn,
                                        compile_mode=compile_mode)

    @classmethod
    def from_pretrained(cls, depth_model='depth-v2', normal_model='normal-v2', model_root=None,
                        device=None, dtype=None, allow_pickle=False, channels_last=False,
                        max_batch_size=8, profile=False,
                        acceleration='eager', warn=None, compile_mode=None, progress=None,
                        decoder=DECODER_VAE):
        """
        Load the chosen variants ('' or None disables a task) from ``model_root`` or the hub.

        ``decoder``: 'vae' (default: each model's own SD VAE decoder) or 'taesd' (the VAE-decoded
        models decode their x0 latent with TAESD, ``madebyollin/taesd``, diffusers
        ``AutoencoderTiny``: faster, less accurate; see :meth:`_decode`). The image is still
        encoded with the SD VAE. DPT-head models (disparity-dpt-v2) ignore ``decoder``: their
        head replaces the decoder; TAESD is loaded only when a model decodes with it.

        ``acceleration``: one of ``model.acceleration.ACCELERATIONS`` ('auto', 'eager',
        'compile', 'cuda_graphs', 'compile+cuda_graphs'); a fast path is checked against eager
        on the warm-up frame of each new input shape and falls back to eager, calling
        ``warn(message)`` once, on any error or mismatch (see :attr:`acceleration`).
        (Benchmarks call :meth:`compile_models` for an unchecked compile.) ``progress``, when
        given, is called as ``progress(done, total, label)`` before each component loads and
        once at the end (``done == total``), for progress bars. Raises WeightsError for
        missing/corrupt/mismatched weights and ValueError for bad arguments.
        """
        if decoder not in DECODERS:
            raise ValueError(f'decoder must be one of {", ".join(DECODERS)}, got {decoder!r}')
        specs = {}
        if depth_model:
            specs['depth'] = get_model_spec(depth_model, task='depth')
        if normal_model:
            specs['normal'] = get_model_spec(normal_model, task='normal')
        if not specs:
            raise ValueError('enable at least one of depth_model and normal_model')
        device = resolve_device(device)
        dtype = resolve_dtype(dtype, device)
        vae_dtype = vae_dtype_for(dtype)
        memory_format = torch.channels_last if channels_last else torch.contiguous_format
        locator = WeightsLocator(model_root, [s.name for s in specs.values()], allow_pickle,
                                 decoder=decoder)
        unets, heads, vaes, conditionings, steps = {}, {}, {}, {}, {}
        use_taesd = decoder == DECODER_TAESD and any(
            not spec.has_dpt_head for spec in specs.values())
        total = (len({(s.text_repo, s.conditioning) for s in specs.values()})
                 + len({(s.vae_repo, s.vae_subfolder) for s in specs.values()})
                 + len(specs) + sum(1 for s in specs.values() if s.has_dpt_head)
                 + int(use_taesd))
        done = [0]

        def step(label):
            if progress is not None:
                progress(done[0], total, label)
            done[0] += 1
        for spec in specs.values():
            key = (spec.text_repo, spec.conditioning)
            if key not in conditionings:
                step('text encoder')
                embedding = empty_prompt_embedding(
                    locator, spec.conditioning, spec.text_repo).to(device, dtype)
                # Equal text encoders (copies of SD 2's) give one shared tensor.
                conditionings[key] = next(
                    (known for known in conditionings.values() if known.shape == embedding.shape
                     and torch.equal(known, embedding)), embedding)
            key = (spec.vae_repo, spec.vae_subfolder)
            if key not in vaes:
                step('VAE')
                # fp32 tails taken before the cast keep the checkpoint's values exactly.
                vae = place_module(keep_decoder_output_fp32(load_vae(locator, *key)),
                                   device, vae_dtype, memory_format)
                # Copies of the same VAE weights in several repos become one module.
                vaes[key] = next((known for known in vaes.values() if _same_weights(known, vae)),
                                 vae)
                del vae
        if use_taesd:
            step('TAESD decoder')
            vaes[TAESD_KEY] = place_module(keep_decoder_output_fp32(load_taesd(locator)),
                                           device, vae_dtype, memory_format)
        for task, spec in specs.items():
            step(f'{spec.name} UNet')
            unet = load_unet(locator, spec)
            width = conditionings[(spec.text_repo, spec.conditioning)].shape[-1]
            if unet.config.cross_attention_dim != width:
                raise WeightsError(
                    f'{spec.name}: UNet cross_attention_dim {unet.config.cross_attention_dim} '
                    f'does not match the text encoder width {width}; the UNet and the '
                    f'{spec.text_repo} text encoder come from different model families')
            scheduler = load_scheduler(locator, spec) if spec.scheduler_subfolder else None
            steps[task] = denoising_step(spec, scheduler)
            unets[task] = place_module(unet, device, dtype, memory_format)
            if spec.has_dpt_head:
                step(f'{spec.name} DPT head')
                heads[task] = place_module(
                    keep_dpt_head_output_fp32(load_dpt_head(locator, spec)), device, dtype,
                    memory_format)
        gc.collect()
        if progress is not None:
            progress(total, total, 'done')
        predictor = cls(specs, unets, heads, vaes, conditionings, device, dtype,
                        channels_last=channels_last, max_batch_size=max_batch_size,
                        model_root=model_root, profile=profile, steps=steps,
                        acceleration=acceleration, warn=warn, compile_mode=compile_mode,
                        decoder=decoder)
        return predictor

    # ----------------------------------------------------------------- properties
    @property
    def depth_spec(self):
        """Return the depth ModelSpec, or None when depth is disabled."""
        return self._specs.get('depth')

    @property
    def normal_spec(self):
        """Return the normal ModelSpec, or None when normals are disabled."""
        return self._specs.get('normal')

    @property
    def acceleration(self):
        """Return the AccelerationStatus: requested and active path, why, and the checks."""
        return self._accelerator.status

    @property
    def decoder(self):
        """Return the requested decoder, 'vae' or 'taesd' (DPT-head models ignore it)."""
        return self._decoder

    def decoder_summary(self):
        """Return which decoder each task runs, e.g. 'depth: taesd (madebyollin/taesd, MIT)'."""
        parts = []
        for task, spec in self._specs.items():
            if spec.has_dpt_head:
                used = 'DPT head (decoder ignored)'
            elif self._uses_taesd(task):
                used = f'taesd ({TAESD_REPO}, {TAESD_LICENCE})'
            else:
                used = f'vae ({spec.vae_repo}/{spec.vae_subfolder})'
            parts.append(f'{task}: {used}')
        return '; '.join(parts)

    @property
    def device(self):
        """Return the torch.device everything runs on."""
        return self._device

    @property
    def dtype(self):
        """Return the compute dtype of the UNets and heads (the VAE uses bf16 for fp16 runs)."""
        return self._dtype

    @property
    def tasks(self):
        """Return the enabled tasks, e.g. ('depth', 'normal')."""
        return tuple(self._specs)

    def describe(self):
        """Return a one-line summary for logs, naming the licence of each loaded model."""
        names = ', '.join(f'{task}={spec.name}' for task, spec in self._specs.items())
        licences = '; '.join(f'{spec.name}: {spec.licence}' for spec in self._specs.values())
        return (f'GenPercept {names} on {self._device} ({DTYPE_NAMES[self._dtype]}, VAE '
                f'{DTYPE_NAMES[self._vae_dtype]}), decoder {self._decoder} '
                f'({self.decoder_summary()}), weights from '
                f'{self.model_root or "the Hugging Face cache"}; licences: {licences}')

    def denoising_step(self, task):
        """Return the :class:`DenoisingStep` the model of ``task`` runs."""
        return self._steps[task]

    def conditioning(self, task):
        """Return the [1, S, D] empty-prompt embedding the model of ``task`` is conditioned on."""
        spec = self._specs[task]
        return self._conditionings[(spec.text_repo, spec.conditioning)]

    def _vae_for(self, task):
        spec = self._specs[task]
        return self._vaes[(spec.vae_repo, spec.vae_subfolder)]

    def _uses_taesd(self, task):
        return self._decoder == DECODER_TAESD and not self._specs[task].has_dpt_head

    def _decoder_for(self, task):
        """Return the model whose decoder turns the x0 latent of ``task`` into pixels."""
        return self._vaes[TAESD_KEY] if self._uses_taesd(task) else self._vae_for(task)

    def _encode_key(self, task):
        return (self._specs[task].preprocess, id(self._vae_for(task)))

    def encode_groups(self, tasks=None):
        """Return the enabled tasks grouped by shared VAE encode, e.g. [('depth', 'normal')]."""
        groups = {}
        for task in self.tasks if tasks is None else tasks:
            groups.setdefault(self._encode_key(task), []).append(task)
        return [tuple(group) for group in groups.values()]

    def free_memory(self):
        """Release cached allocator memory (call after an out-of-memory error)."""
        gc.collect()
        if self._device.type == 'cuda':
            torch.cuda.empty_cache()

    def warmup(self, height, width, processing_resolution=DEFAULT_PROCESSING_RESOLUTION,
               batch_size=1):
        """Run one prediction on a grey image (allocations, kernels, compiled graphs)."""
        image = np.full((height, width, 3), 128, dtype=np.uint8)
        return self.predict([image] * batch_size, processing_resolution=processing_resolution)

    def compile_models(self, mode=None):
        """Wrap the UNets, heads and VAE halves in ``torch.compile`` (static shapes)."""
        for task in self._unets:
            self._unets[task] = torch.compile(self._unets[task], mode=mode, dynamic=False)
        for task in self._heads:
            self._heads[task] = torch.compile(self._heads[task], mode=mode, dynamic=False)
        for vae in {id(vae): vae for vae in self._vaes.values()}.values():
            vae.encoder = torch.compile(vae.encoder, mode=mode, dynamic=False)
            vae.decoder = torch.compile(vae.decoder, mode=mode, dynamic=False)

    # ----------------------------------------------------------------- internals
    def _install_feature_taps(self, task, unet):
        store = self._features.setdefault(task, [])

        def tap(_module, _inputs, output):
            store.append(output)

        for block in unet.up_blocks:
            block.register_forward_hook(tap)

    def _timestep(self, task, batch):
        return torch.full((batch,), self._steps[task].timestep, dtype=torch.long,
                          device=self._device)

    def _encode(self, vae, pixels, sample=False):
        """
        Return the scaled image latent: posterior mean, or a posterior sample when asked.

        The sample is diffusers' ``DiagonalGaussianDistribution.sample``: ``mean + std * eps``
        with ``std = exp(0.5 * clamp(logvar, -30, 20))`` and eps from ``latent_generator``.
        """
        moments = vae.quant_conv(vae.encoder(pixels))
        latent = moments[:, :4]
        if sample:
            generator = self.latent_generator
            noise = torch.randn(latent.shape, generator=generator, device=generator.device,
                                dtype=latent.dtype).to(latent.device)
            std = torch.exp(0.5 * torch.clamp(moments[:, 4:], -30.0, 20.0))
            latent = latent + std * noise
        return latent * self._latent_scales[id(vae)]

    def _unet_input(self, task, latents):
        sample = latents.to(self._dtype)
        if self._specs[task].unet_in_channels == 8:
            # Marigold layout: [image latent, x_T] with x_T = 0 ("noise='zeros'"); order matters.
            sample = torch.cat([sample, torch.zeros_like(sample)], dim=1)
        return sample

    def _x0(self, task, output):
        """Turn the UNet output into the clean latent (see :class:`DenoisingStep`)."""
        x0_from = self._steps[task].x0_from
        if x0_from == X0_NEGATIVE_V:
            return -output          # one beta = 1 DDIM step: x0 = -v exactly
        if x0_from == X0_V_PREDICTION:
            # sqrt(a_t) * 0 - sqrt(1 - a_t) * v, the factor in float32 as DDIMScheduler.step.
            return self._x0_factors[task] * output
        if x0_from == X0_SAMPLE:
            return output
        raise ValueError(f'unknown x0 rule {x0_from!r}')

    def _denoise(self, task, latents, watch):
        """Return ('pred', head output) for DPT-head tasks, else ('latent', VAE input)."""
        spec = self._specs[task]
        unet = self._unets[task]
        batch = latents.shape[0]
        cond = self.conditioning(task).expand(batch, -1, -1)
        sample = self._unet_input(task, latents)
        extra = {}
        if task in self._class_labels:
            extra['class_labels'] = self._class_labels[task].expand(batch, -1)
        if spec.has_dpt_head:
            store = self._features[task]
            store.clear()
            with watch.stage('unet'):
                try:
                    unet(sample, self._timestep(task, batch), encoder_hidden_states=cond)
                    features = list(store[::-1])
                finally:
                    store.clear()   # never keep activations alive after an error (OOM)
            with watch.stage('head'):
                return 'pred', self._heads[task](features)[:, None]
        with watch.stage('unet'):
            output = unet(sample, self._timestep(task, batch), encoder_hidden_states=cond,
                          **extra).sample
            # x0 / scaling_factor of the decoding model, as diffusers' pipelines call
            # ``vae.decode(latents / vae.config.scaling_factor)``: 0.18215 for the SD VAE, 1.0
            # for TAESD (which takes the SD-scaled latent as it is; see _decode).
            scale = self._latent_scales[id(self._decoder_for(task))]
            return 'latent', self._x0(task, output).to(self._vae_dtype) / scale

    def _decode(self, latents, watch):
        """
        Decode {task: latent} with each task's decoder; return {task: [B, 3, h, w] fp32}.

        SD VAE: ``decoder(post_quant_conv(z))`` as ``AutoencoderKL.decode``, on
        ``z = x0 / 0.18215``. TAESD: ``decoder(x0)`` as ``AutoencoderTiny.decode`` (diffusers
        0.42.1 ``models/autoencoders/autoencoder_tiny.py`` line 284: ``output = self.decoder(x)``,
        no post-quant convolution), on ``x0 / 1.0`` (its ``scaling_factor`` is 1.0: it takes
        the SD-scaled latent, as diffusers' pipelines pass ``latents / vae.config.
        scaling_factor``). ``DecoderTiny.forward`` (``models/autoencoders/vae.py`` lines 887 and
        895) clamps its input with ``tanh(x / 3) * 3``, and its layers produce [0, 1], which it
        maps to [-1, 1] with ``x.mul(2).sub(1)`` "to match diffusers convention": the same range
        as the SD VAE's output, so every post-processing recipe is unchanged. (Same code in
        diffusers 0.30, the oldest supported.)

        Tasks sharing a decoder (depth and normals) are decoded in one batched call when
        ``batch_decoders`` is on: one decoder launch sequence instead of two (the decoder is
        ~55 % of the work, performance-anchors.md); GroupNorm is per image, so each image's
        result is the same as decoding it alone, up to kernel choice.
        """
        by_vae = {}
        for task in latents:
            vae = self._decoder_for(task)
            by_vae.setdefault(id(vae), (vae, []))[1].append(task)
        preds = {}
        with watch.stage('decode'):
            for vae, tasks in by_vae.values():
                chunks = [tasks] if self.batch_decoders else [[task] for task in tasks]
                for chunk in chunks:
                    stacked = torch.cat([latents[task] for task in chunk]) if len(chunk) > 1 \
                        else latents[chunk[0]]
                    if vae is self._vaes.get(TAESD_KEY):
                        decoded = vae.decoder(stacked)
                    else:
                        decoded = vae.decoder(vae.post_quant_conv(stacked))
                    for task, pred in zip(chunk, decoded.chunk(len(chunk))):
                        preds[task] = pred
        return preds

    def _finish(self, task, pred, out_size, watch, return_raw):
        spec = self._specs[task]
        with watch.stage('postprocess'):
            raw = postprocess(spec.postprocess, pred, spec.channel_mean, out_size)
            if spec.task == 'depth':
                # Depth is its own raw output: one tensor, one copy to the host.
                return {'value': raw[:, 0]}
            result = {'value': normals_to_optical(raw, spec.normal_shifted)}
            if return_raw:
                result['raw'] = raw_layout(raw, spec.raw_layout)
        return result

    def _upload(self, images):
        """Stack HxWx3 uint8 images into a [B, 3, H, W] device tensor."""
        if all(isinstance(image, torch.Tensor) for image in images):
            return torch.stack([image.to(self._device) for image in images]).permute(0, 3, 1, 2)
        images = [image.cpu().numpy() if isinstance(image, torch.Tensor) else image
                  for image in images]
        if self._device.type == 'cuda':
            # Reused pinned staging buffer per shape: the copy runs asynchronously; an event
            # guards the buffer until that copy has finished.
            shape = (len(images),) + tuple(images[0].shape)
            if shape not in self._pinned:
                while len(self._pinned) >= MAX_STAGING_SHAPES:
                    self._pinned.pop(next(iter(self._pinned)))
                self._pinned[shape] = [
                    torch.empty(shape, dtype=torch.uint8, pin_memory=True), None]
            slot = self._pinned[shape]
            if slot[1] is not None:
                slot[1].synchronize()
            host = slot[0].numpy()
            for index, image in enumerate(images):
                host[index] = image        # any strides (e.g. a BGR -> RGB view)
            batch = slot[0].to(self._device, non_blocking=True)
            slot[1] = record_event(self._device)
        else:
            batch = torch.from_numpy(np.stack(images))
        return batch.permute(0, 3, 1, 2)

    def _run_group(self, images, tasks, processing_resolution, output_resolution, watch,
                   return_raw):
        height, width = (int(n) for n in images[0].shape[:2])
        size = processing_size(height, width, processing_resolution)
        out_size = (height, width) if output_resolution == 'input' else size
        results = {}
        uploaded = None
        for group in self.encode_groups(tasks):
            recipe = self._specs[group[0]].preprocess
            vae = self._vae_for(group[0])
            with watch.stage('preprocess'):
                if recipe == PRE_PIL_BICUBIC:
                    arrays = [image.cpu().numpy() if isinstance(image, torch.Tensor) else image
                              for image in images]
                    pixels = preprocess_v1(arrays, size, self._vae_dtype, self._device)
                else:
                    uploaded = self._upload(images) if uploaded is None else uploaded
                    convert = preprocess_float if recipe == PRE_FLOAT_BILINEAR else preprocess_v2
                    pixels = convert(uploaded, size, self._vae_dtype)
                pixels = pixels.contiguous(memory_format=self._memory_format)
            sample = self.latent_generator is not None and any(
                self._specs[task].family == LOTUS_D for task in group)
            with watch.stage('encode'):
                latents = self._encode(vae, pixels, sample)
            pending = {}
            for task in group:
                kind, value = self._denoise(task, latents, watch)
                if kind == 'pred':
                    results[task] = self._finish(task, value, out_size, watch, return_raw)
                else:
                    pending[task] = value
            for task, pred in self._decode(pending, watch).items():
                results[task] = self._finish(task, pred, out_size, watch, return_raw)
        with watch.stage('to_host'):
            host = {task: {key: value.cpu().numpy() for key, value in result.items()}
                    for task, result in results.items()}
        return size, host

    @torch.inference_mode()
    def predict(self, images, processing_resolution=DEFAULT_PROCESSING_RESOLUTION,
                output_resolution='input', tasks=None, return_raw=True):
        """
        Run the enabled tasks on a batch of RGB images and return a PredictionOutput.

        ``images``: list of HxWx3 uint8 RGB arrays/tensors (tensors may already be on the
        device) or one BxHxWx3 array/tensor. Images of equal size are batched together
        (``max_batch_size`` at most). ``processing_resolution``: longest edge, 0 = native.
        ``output_resolution``: 'input' (resize back, the reference default) or 'processing'.
        ``tasks``: subset of the enabled tasks (default: all). ``return_raw=False`` skips the
        extra copy of ``normal_raw`` (left None); ``depth_raw`` is the depth array itself.
        """
        with self._predict_lock, cuda_device_scope(self._device):
            # One predict at a time: the feature taps, staging buffers and graphs are per
            # predictor. Everything CUDA runs under the predictor's device (cuda:N).
            return self._predict(images, processing_resolution, output_resolution, tasks,
                                 return_raw)

    def _predict(self, images, processing_resolution, output_resolution, tasks, return_raw):
        started = time.perf_counter()
        images = as_image_list(images)
        if output_resolution not in OUTPUT_RESOLUTIONS:
            raise ValueError(f'output_resolution must be one of {OUTPUT_RESOLUTIONS}, '
                             f'got {output_resolution!r}')
        tasks = self.tasks if tasks is None else tuple(tasks)
        unknown = [task for task in tasks if task not in self._specs]
        if unknown or not tasks:
            raise ValueError(f'tasks {list(tasks)} not available; this predictor has '
                             f'{list(self.tasks)}')
        for image in images:
            processing_size(image.shape[0], image.shape[1], processing_resolution)
        groups = {}
        for index, image in enumerate(images):
            groups.setdefault(tuple(int(n) for n in image.shape[:2]), []).append(index)
        arguments = (groups, tasks, processing_resolution, output_resolution)
        accelerator = self._accelerator
        signature = (tuple((shape, len(indices)) for shape, indices in groups.items()),
                     processing_resolution, output_resolution, tasks)
        if accelerator.needs_prepare(signature):
            # Warm-up (compile / capture) and check of the fast path on frames of these shapes.
            warmup = [None] * len(images)
            for (height, width), indices in groups.items():
                for index, frame in zip(indices, check_frames(height, width, len(indices))):
                    warmup[index] = frame
            accelerator.prepare(signature, lambda: self._run_all(warmup, *arguments, True))
        if accelerator.active == 'eager':
            output = self._run_all(images, *arguments, return_raw)
        else:
            try:
                output = self._run_all(images, *arguments, return_raw)
            except torch.OutOfMemoryError:
                raise
            except Exception as error:  # noqa: B902 - a fast path failing means eager
                accelerator.fail(error)
                output = self._run_all(images, *arguments, return_raw)
        output.timings['total'] = time.perf_counter() - started
        return output

    def _run_all(self, images, groups, tasks, processing_resolution, output_resolution,
                 return_raw):
        watch = Stopwatch(self._device, self.profile)
        per_image = [None] * len(images)
        for indices in groups.values():
            for start in range(0, len(indices), self.max_batch_size):
                chunk = indices[start:start + self.max_batch_size]
                size, host = self._run_group([images[i] for i in chunk], tasks,
                                             processing_resolution, output_resolution, watch,
                                             return_raw)
                for position, index in enumerate(chunk):
                    per_image[index] = (size, {
                        task: {key: value[position] for key, value in outputs.items()}
                        for task, outputs in host.items()})
        output = PredictionOutput(processing_size=[entry[0] for entry in per_image])
        if 'depth' in tasks:
            output.depth = [entry[1]['depth']['value'] for entry in per_image]
            output.depth_raw = list(output.depth)   # same arrays: depth is its own raw form
            output.depth_kind = self._specs['depth'].output_kind
            output.depth_model = self._specs['depth'].name
        if 'normal' in tasks:
            output.normals = [entry[1]['normal']['value'] for entry in per_image]
            if return_raw:
                output.normal_raw = [entry[1]['normal']['raw'] for entry in per_image]
            output.normal_model = self._specs['normal'].name
        output.timings = watch.totals
        return output
