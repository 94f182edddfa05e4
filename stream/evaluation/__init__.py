"""Offline evaluation: ranking metrics, prequential replay and report rendering."""
