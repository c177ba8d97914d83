"""Telling a person when a close cannot complete: the webhook resource and the sensors that use it."""
