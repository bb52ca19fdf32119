"""Real-time Python with FastAPI: the server every lesson starts and drives.

``create_app(settings)`` builds the app; ``start()`` serves it from a background thread.
"""

import sys

from course_server.app import create_app
from course_server.lessons import feed as _feed
from course_server.runner import RunningServer, start, stop, stop_all
from course_server.settings import Settings

# Exercise notebooks handed out before the package had subpackages import lesson 01's feed as
# ``course_server.feed``; this keeps those submissions importing, and so grading.
sys.modules.setdefault("course_server.feed", _feed)

__all__ = ["RunningServer", "Settings", "create_app", "start", "stop", "stop_all"]
__version__ = "0.1.0"
