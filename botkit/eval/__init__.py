"""``botkit eval``: judging personas offline (datasets, runs) and online (users' 👍/👎).

``botkit eval report`` (:mod:`botkit.eval.report`) shows, per persona version, the votes its
final replies got beside the offline results read from ``botkit eval --json`` files
(:mod:`botkit.eval.offline`).
"""
