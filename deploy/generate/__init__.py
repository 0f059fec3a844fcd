"""Generates the per-service parts of the deployment from one list (`platform.DEPLOYED`):
compose blocks, scrape targets, Kubernetes objects and Grafana dashboards."""
