#!/usr/bin/python3
# derive_scales.py - how the OKLab anchors of views/colormap.c were derived (run it to print
# them). Each scale is a curve in OKLCh (lightness, chroma, hue); the anchors are points of the
# curve at equal OKLab arc length, so linear interpolation between them gives perceptually even
# steps. Chroma is reduced where a colour would fall outside sRGB.
import numpy as np

M1 = np.array([[0.4122214708, 0.5363325363, 0.0514459929], [0.2119034982, 0.6806995451, 0.1073969566],
               [0.0883024619, 0.2817188376, 0.6299787005]])
M2 = np.array([[0.2104542553, 0.7936177850, -0.0040720468], [1.9779984951, -2.4285922050, 0.4505937099],
               [0.0259040371, 0.7827717662, -0.8086757660]])


def oklab_to_linear(lab):
    return np.linalg.inv(M1) @ ((np.linalg.inv(M2) @ lab) ** 3)


def linear_to_srgb(c):
    return np.where(c <= 0.0031308, 12.92 * c, 1.055 * np.abs(c) ** (1 / 2.4) - 0.055)


def lch(L, C, h):
    return np.array([L, C * np.cos(np.radians(h)), C * np.sin(np.radians(h))])


def in_gamut(lab, eps=1e-4):
    lin = oklab_to_linear(lab)
    return np.all(lin >= -eps) and np.all(lin <= 1 + eps)


def clip(L, C, h):
    while C > 0 and not in_gamut(lch(L, C, h)):
        C -= 0.002
    return lch(L, C, h)


def sequential(t):  # purple -> blue -> teal -> green -> yellow, lightness rising linearly
    C = np.interp(t, [0, 0.25, 0.5, 0.75, 1], [0.12, 0.10, 0.095, 0.14, 0.18])
    return clip(0.27 + 0.66 * t, C, 300 - 195 * t)


def diverging(t):  # dark blue -> near-white -> dark red, the same lightness on both sides
    x = 2 * t - 1
    m = abs(x)
    L = np.interp(m, [0, 0.5, 1], [0.97, 0.70, 0.42])
    C = np.interp(m, [0, 0.5, 1], [0.0, 0.11, 0.15])
    return clip(L, C, 255 if x < 0 else 27)


def anchors(f, k):
    ts = np.linspace(0, 1, 2001)
    P = np.array([f(t) for t in ts])
    d = np.r_[0, np.cumsum(np.linalg.norm(np.diff(P, axis=0), axis=1))]
    return [P[min(np.searchsorted(d, s), len(P) - 1)] for s in np.linspace(0, d[-1], k)]


def hexcolour(lab):
    s = linear_to_srgb(np.clip(oklab_to_linear(lab), 0, 1))
    return '#%02x%02x%02x' % tuple(int(round(x * 255)) for x in s)


for name, pts in (('seq_anchors', anchors(sequential, 9)),
                  ('div_anchors', anchors(lambda t: diverging(0.5 * t), 5) +
                   anchors(lambda t: diverging(0.5 + 0.5 * t), 5)[1:])):
    print(name)
    for a in pts:
        print('    {%.4f, %.4f, %.4f}, // %s' % (a[0], a[1], a[2], hexcolour(a)))
