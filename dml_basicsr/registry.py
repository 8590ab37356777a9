"""mmengine's hook: under ``default_scope='dml_basicsr'`` mmengine imports ``dml_basicsr.registry`` to find this
package's registries (whose ``locations`` then import the components). Importing it imports mmengine; importing
``dml_basicsr`` does not."""
from .integrations.registry import MODELS, TRANSFORMS

__all__ = ['MODELS', 'TRANSFORMS']
