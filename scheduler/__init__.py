"""APScheduler setup and job functions; jobs only call services."""
