"""Journey: `/math` on Discord, read as a student reads it (docs/math.md: "every complete math
segment ... becomes Unicode").

The model writes sums, products, powers of Greek letters and `\\ne` as often as fractions; each
must keep its meaning on screen. They were dropped: `\\sum_{i=1}^{n} i` showed as `₌₁ⁿ i` (the
script's Unicode letters extended the macro's name), `\\alpha^{n}` as nothing, `n \\ne 0` as `n 0`,
`0.\\overline{3}` (0.333…) as `0.3`, `\\pmod{5}` as `5`.
"""

from __future__ import annotations

from pathlib import Path

from discord_harness import discord_rig

ANSWER = (
    "Pair the terms: $\\sum_{i=1}^{n} i = \\frac{n(n+1)}{2}$ for every $n \\ne 0$, and "
    "$\\prod_{k=1}^{n} k = n!$. A power of a letter: $\\alpha^{n}$; an angle: $90^\\circ$; "
    "$\\gcd(12, 18) = 6$; $p \\implies q$; $0.\\overline{3} = \\frac{1}{3}$; "
    "$17 \\equiv 2 \\pmod{5}$.\n\n\\boxed{\\frac{n(n+1)}{2}}"
)


async def test_slash_math_shows_sums_powers_and_not_equal_as_written(tmp_path: Path) -> None:
    async with discord_rig(tmp_path) as rig:
        rig.bot.standin.script_reply(ANSWER)
        asked = await rig.fake.slash_command(rig.fake.add_user("ada"), "math", {"question": "Sum 1 to n"})

        def shown() -> str:
            return "".join(rig.fake.interaction_messages(asked.id))

        await rig.fake.wait_for(lambda: "Final answer" in shown(), 15)
        final = shown()
    assert "∑ᵢ₌₁ⁿ i = (n(n+1))/2" in final
    assert "n ≠ 0" in final
    assert "∏ₖ₌₁ⁿ k = n!" in final
    assert "αⁿ" in final and "90°" in final
    assert "gcd (12, 18) = 6" in final and "p ⟹ q" in final
    assert "0.3\u0305 = 1/3" in final  # 0.333…: the bar kept, not 0.3
    assert "17 ≡ 2 (mod 5)" in final
    assert "\\" not in final
    assert final.rstrip().endswith("**Final answer:** `(n(n+1))/2`")
