"""The grid: jobs and their ids, the runner and its backends, the results store and claims, search and tuning."""
