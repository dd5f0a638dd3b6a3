"""PyInstaller hook: phonenumbers' per-region metadata, without the unused geocoding tables."""

from PyInstaller.utils.hooks import collect_submodules

# The metadata modules are imported by name when a region is first used.
hiddenimports = collect_submodules("phonenumbers.data") + collect_submodules(
    "phonenumbers.shortdata"
)
