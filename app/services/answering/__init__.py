"""The parts of the answer pipeline that ``app.services.answer`` runs in order."""
