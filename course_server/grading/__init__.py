"""Grading a submission without trusting it: the pieces ``python -m course_server.grade`` uses.

- ``extract``: from a notebook, the learner's definitions (not their ``check()`` calls);
- ``worker``: the process that runs them and the instructor's checks, one per submission;
- ``guard``: notices learner code that changes the check machinery;
- ``channel``: the worker's verdicts to the grader, on a pipe of their own, signed with a nonce;
- ``sandbox``: the worker's isolation (bubblewrap, an unprivileged uid, or a process group),
  limits, environment, and the end of its whole process tree;
- ``submission``: one submission graded: its folder, its worker, its grades.
"""
