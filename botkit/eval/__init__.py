"""``botkit eval``: judging personas offline (datasets, runs) and online (users' 👍/👎).

``botkit eval PERSONA DATASET`` judges a persona the way the model's usage notes ask (seed
article, §2.4): each question of a dataset is asked several times (3-5 independent runs) through
exactly the prompt path the bots use (:class:`botkit.pipeline.generation.Generation`: persona
rendered into the user turn, the ``"\\n"`` guard, the persona's sampling, the empty-answer retry,
the reasoning split), and graded on the final text a user would see (botkit's notices included).
The modules, one job each:

- :mod:`.dataset`: the JSONL format, validated line by line;
- :mod:`.grading`: mathematics compared as mathematics (math-verify), and the text checks;
- :mod:`.runner`: runs × questions on the configured backend, with paired seeds;
- :mod:`.stats`: mean ± std across runs, percentiles, the paired bootstrap of ``--compare``;
- :mod:`.report_table`, :mod:`.chart`: the terminal table and the PNG;
- :mod:`.subjects`: which persona an argument names (name, file, stored version);
- :mod:`.cli`: the command, its progress bar and its Ctrl-C.

``botkit eval report`` (:mod:`botkit.eval.report`) shows, per persona version, the votes its
final replies got beside the offline results read from ``botkit eval --json`` files
(:mod:`botkit.eval.offline`).
"""
