"""Reviewing specs, as a pull request does: the spec check (``check``: offline passes, the backends' online checks,
cost, conflicts; for the CLI's ``validate`` and the Functions' ``validate`` and ``submit`` alike), what a spec
resolves to (``derive``), the plan between two revisions (``plan``, read from git by ``gitrepo``) and how it reads
(``plan_render``)."""
