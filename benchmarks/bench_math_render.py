"""What math display costs: the formula PNG (first one includes importing matplotlib) and the
Unicode view that every edit of a math answer goes through.

    PYTHONPATH=. python benchmarks/bench_math_render.py

The numbers are in docs/math.md.
"""

from __future__ import annotations

import time

from botkit.mathtext.render import formula_image
from botkit.mathtext.unicode import render_unicode

answer = r"We solve $$x^2 - 5x + 6 = 0$$ by factoring: \[(x-2)(x-3) = 0\] so $x = \frac{5 \pm 1}{2}$ and $\boxed{2, 3}$."
t1 = time.perf_counter()
img = formula_image(answer)
t2 = time.perf_counter()
times = []
for _ in range(20):
    a = time.perf_counter()
    formula_image(answer)
    times.append(time.perf_counter() - a)
u = []
for _ in range(200):
    a = time.perf_counter()
    render_unicode(answer * 5)
    u.append(time.perf_counter() - a)
times.sort()
u.sort()
print(f"first image (matplotlib import included): {(t2 - t1) * 1000:.0f} ms, {len(img.data)} bytes")
print(f"image p50 {times[10] * 1000:.1f} ms, max {times[-1] * 1000:.1f} ms (20 runs)")
print(
    f"unicode view of a {len(answer * 5)}-char answer: p50 {u[100] * 1000:.2f} ms, max {u[-1] * 1000:.2f} ms (200 runs)"
)
# A streaming answer: growing prefixes, as the edits see it.
long = answer * 6
a = time.perf_counter()
for end in range(50, len(long), 50):
    render_unicode(long[:end], partial=True)
steps = len(range(50, len(long), 50))
print(
    f"streaming views of a {len(long)}-char answer: {(time.perf_counter() - a) / steps * 1000:.2f} ms per edit ({steps} edits)"
)
