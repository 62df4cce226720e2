"""Qt-side models of the studio: panel values, jobs, the timeline, history, settings and autosave.

Nothing here imports torch: these modules load before the engine does, so the
window can show at once while torch loads in the engine thread.
"""
