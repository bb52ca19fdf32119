"""``python -m course_server.grading CHANNEL_FD``: the grader's worker (see ``worker``)."""

from course_server.grading.worker import main

main()
