"""The plugin executor's use-case room: `PluginService` lists, reloads and runs plugins;
`JobService` queues runs as jobs, runs them from the queue and keeps their state."""

from services.plugin_executor.usecases.job_documents import job_document
from services.plugin_executor.usecases.jobs import JobRequest, JobService
from services.plugin_executor.usecases.service import Catalog, PluginService, Run

__all__ = ["Catalog", "JobRequest", "JobService", "PluginService", "Run", "job_document"]
