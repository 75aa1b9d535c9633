"""Business logic shared by views, CLI commands and jobs; views stay thin."""
