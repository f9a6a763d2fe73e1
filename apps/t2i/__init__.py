"""Object-centric text-to-image alignment (OSPO) on procedurally rendered compositional scenes."""
