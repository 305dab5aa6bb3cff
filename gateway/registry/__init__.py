"""The model registry: schema, loading, lookup (and, in watch.py, hot reload)."""

from gateway.registry.loader import RegistryError, default_registry_path, load_registry
from gateway.registry.snapshot import Model, Registry

__all__ = ["Model", "Registry", "RegistryError", "default_registry_path", "load_registry"]
