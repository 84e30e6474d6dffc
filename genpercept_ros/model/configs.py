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
Architecture configurations of the real checkpoints (SD 2.1 family) and of tiny test copies.

The real values are what the published checkpoints use; the reference implementation builds the
GenPercept UNets from the SD 2.1 UNet config, so a checkpoint ``config.json`` that omits keys is
completed from ``SD21_UNET_CONFIG``.
"""

import copy

SD21_UNET_CONFIG = {
    '_class_name': 'UNet2DConditionModel',
    'act_fn': 'silu',
    'attention_head_dim': [5, 10, 20, 20],
    'block_out_channels': [320, 640, 1280, 1280],
    'center_input_sample': False,
    'cross_attention_dim': 1024,
    'down_block_types': ['CrossAttnDownBlock2D', 'CrossAttnDownBlock2D',
                         'CrossAttnDownBlock2D', 'DownBlock2D'],
    'downsample_padding': 1,
    'dual_cross_attention': False,
    'flip_sin_to_cos': True,
    'freq_shift': 0,
    'in_channels': 4,
    'layers_per_block': 2,
    'mid_block_scale_factor': 1,
    'norm_eps': 1e-05,
    'norm_num_groups': 32,
    'num_class_embeds': None,
    'only_cross_attention': False,
    'out_channels': 4,
    'sample_size': 96,
    'up_block_types': ['UpBlock2D', 'CrossAttnUpBlock2D', 'CrossAttnUpBlock2D',
                       'CrossAttnUpBlock2D'],
    'upcast_attention': True,
    'use_linear_projection': True,
}

SD21_VAE_CONFIG = {
    '_class_name': 'AutoencoderKL',
    'act_fn': 'silu',
    'block_out_channels': [128, 256, 512, 512],
    'down_block_types': ['DownEncoderBlock2D'] * 4,
    'in_channels': 3,
    'latent_channels': 4,
    'layers_per_block': 2,
    'norm_num_groups': 32,
    'out_channels': 3,
    'sample_size': 768,
    'up_block_types': ['UpDecoderBlock2D'] * 4,
}

SD21_TEXT_ENCODER_CONFIG = {
    'architectures': ['CLIPTextModel'],
    'attention_dropout': 0.0,
    'bos_token_id': 0,
    'dropout': 0.0,
    'eos_token_id': 2,
    'hidden_act': 'gelu',
    'hidden_size': 1024,
    'initializer_factor': 1.0,
    'initializer_range': 0.02,
    'intermediate_size': 4096,
    'layer_norm_eps': 1e-05,
    'max_position_embeddings': 77,
    'model_type': 'clip_text_model',
    'num_attention_heads': 16,
    'num_hidden_layers': 23,
    'pad_token_id': 1,
    'projection_dim': 512,
    'torch_dtype': 'float32',
    'vocab_size': 49408,
}

# hf_configs/dpt-sd2.1-unet-after-upsample-general/config.json of the reference repository,
# reduced to the keys the DPT neck and head use.
DPT_HEAD_CONFIG = {
    'model_type': 'dpt',
    'architectures': ['DPTNeckHeadForUnetAfterUpsampleIdentity'],
    'add_projection': True,
    'fusion_hidden_size': 256,
    'head_in_index': -1,
    'neck_hidden_sizes': [320, 640, 1280, 1280],
    'use_batch_norm_in_fusion_residual': False,
    'use_bias_in_fusion_residual': False,
}

# Tiny copies: the same keys and block structure, small channel counts.
TINY_UNET_OVERRIDES = {
    'attention_head_dim': [2, 2, 4, 4],
    'block_out_channels': [32, 32, 64, 64],
    'cross_attention_dim': 32,
    'layers_per_block': 1,
    # 8 groups (not 32) so that small test images, whose deepest feature maps are 1x1, still
    # have more than one value per group.
    'norm_num_groups': 8,
    'sample_size': 8,
}
TINY_VAE_OVERRIDES = {
    'block_out_channels': [32, 32, 32, 32],
    'layers_per_block': 1,
    'norm_num_groups': 8,
    'sample_size': 64,
}
TINY_TEXT_ENCODER_OVERRIDES = {
    'hidden_size': 32,
    'intermediate_size': 64,
    'num_attention_heads': 4,
    'num_hidden_layers': 2,
    'projection_dim': 16,
}
TINY_DPT_OVERRIDES = {
    'fusion_hidden_size': 16,
    'neck_hidden_sizes': [32, 32, 64, 64],
}

# The AutoencoderTiny config of madebyollin/taesd: diffusers' AutoencoderTiny defaults, which are
# TAESD's (the hub's config.json itself could not be read here; the loader takes the file's).
TAESD_CONFIG = {
    '_class_name': 'AutoencoderTiny',
    'act_fn': 'relu',
    'decoder_block_out_channels': [64, 64, 64, 64],
    'encoder_block_out_channels': [64, 64, 64, 64],
    'force_upcast': False,
    'in_channels': 3,
    'latent_channels': 4,
    'latent_magnitude': 3,
    'latent_shift': 0.5,
    'num_decoder_blocks': [3, 3, 3, 1],
    'num_encoder_blocks': [1, 3, 3, 3],
    'out_channels': 3,
    'scaling_factor': 1.0,
    'upsampling_scaling_factor': 2,
}
TINY_TAESD_OVERRIDES = {
    'decoder_block_out_channels': [8, 8, 8, 8],
    'encoder_block_out_channels': [8, 8, 8, 8],
}


def _merged(base, overrides):
    merged = copy.deepcopy(base)
    merged.update(copy.deepcopy(overrides))
    return merged


def unet_config(full_size=True):
    """Return the SD 2.1 UNet config, or its tiny copy."""
    return _merged(SD21_UNET_CONFIG, {} if full_size else TINY_UNET_OVERRIDES)


def vae_config(full_size=True):
    """Return the SD 2.1 VAE config, or its tiny copy."""
    return _merged(SD21_VAE_CONFIG, {} if full_size else TINY_VAE_OVERRIDES)


def text_encoder_config(full_size=True, vocab_size=None):
    """Return the SD 2.1 text encoder config, or its tiny copy."""
    config = _merged(SD21_TEXT_ENCODER_CONFIG, {} if full_size else TINY_TEXT_ENCODER_OVERRIDES)
    if vocab_size is not None:
        config['vocab_size'] = vocab_size
    return config


def dpt_head_config(full_size=True):
    """Return the DPT neck/head config, or its tiny copy."""
    return _merged(DPT_HEAD_CONFIG, {} if full_size else TINY_DPT_OVERRIDES)


def taesd_config(full_size=True):
    """Return the TAESD (AutoencoderTiny) config, or its tiny copy."""
    return _merged(TAESD_CONFIG, {} if full_size else TINY_TAESD_OVERRIDES)
