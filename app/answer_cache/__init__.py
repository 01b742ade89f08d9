"""Where cached answers are kept: in this process's memory, or in Redis shared by every
``lantern serve``. The keys and what goes in them are ``app.services.answering.cache``'s."""
