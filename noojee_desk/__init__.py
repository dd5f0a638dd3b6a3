"""Noojee Desk: put leads into a Noojee PBX dialer campaign, reliably."""

__version__ = "0.1.0"
APP_NAME = "Noojee Desk"
APP_ID = "noojee-desk"
