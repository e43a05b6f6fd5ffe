"""Reporting: everything generated from results files, never edited by hand.

* ``leaderboard`` (the numbers) and ``leaderboard_render`` (Markdown, LaTeX, HTML, CSV, JSON; ``leaderboard.md``);
  ``ranking``: which model is best on a metric, with paired tests;
* ``summary``: the findings of a run; ``figures``: its figures; ``report``: the HTML report;
* ``compare`` and ``compare_render``: two runs side by side, the regression gate;
* ``history`` and ``changepoint``: a metric over many runs, and its steps;
* ``escape``: text made safe for Markdown, HTML and LaTeX.
"""
