"""The ResNet generator trunk shared by CycleGAN and pix2pixHD's GlobalGenerator."""

from __future__ import annotations

import torch.nn as nn

from .base import ResnetBlock, plain_instance_norm


def resnet_generator_layers(input_nc: int, output_nc: int, ngf: int, n_down: int, n_blocks: int) -> list[nn.Module]:
    """Reflection-padded 7x7 in, ``n_down`` stride-2 3x3 convs, residual blocks, as many 3x3 transposed convs,
    reflection-padded 7x7 out + tanh. Convs keep their biases (InstanceNorm without affine)."""
    layers: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(input_nc, ngf, kernel_size=7, padding=0),
                               plain_instance_norm(ngf), nn.ReLU(True)]
    dim = ngf
    for _ in range(n_down):
        layers += [nn.Conv2d(dim, dim * 2, kernel_size=3, stride=2, padding=1), plain_instance_norm(dim * 2),
                   nn.ReLU(True)]
        dim *= 2
    layers += [ResnetBlock(dim) for _ in range(n_blocks)]
    for _ in range(n_down):
        layers += [nn.ConvTranspose2d(dim, dim // 2, kernel_size=3, stride=2, padding=1, output_padding=1),
                   plain_instance_norm(dim // 2), nn.ReLU(True)]
        dim //= 2
    layers += [nn.ReflectionPad2d(3), nn.Conv2d(dim, output_nc, kernel_size=7, padding=0), nn.Tanh()]
    return layers
