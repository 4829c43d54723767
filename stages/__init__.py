"""One module per DVC stage. Importing the package pins CPU numerics before any stage loads torch, then
hands a ``python -m stages.<name>`` command to a warm interpreter that has torch imported already
(stages/lib/warm.py; ``LDR_WARM=0`` turns that off)."""

from stages.lib.numerics import pin_cpu_numerics
from stages.lib.warm import hand_over

pin_cpu_numerics()
hand_over()
