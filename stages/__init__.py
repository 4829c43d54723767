"""One module per DVC stage. Importing the package pins CPU numerics before any stage loads torch."""

from stages.lib.numerics import pin_cpu_numerics

pin_cpu_numerics()
