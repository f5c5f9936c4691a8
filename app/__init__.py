"""Nightdesk: after-hours call answering.

Every logger the app creates is a SafeLogger, so a log call can't fail because of a field's name.
"""

import logging

from app.observability import SafeLogger

logging.setLoggerClass(SafeLogger)
