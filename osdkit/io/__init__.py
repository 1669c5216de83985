"""Small I/O helpers every layer may use: fileUtils (atomic writes, JSON with numpy values, figures,
checksums)."""
