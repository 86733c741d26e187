"""The playground: train a small network in the browser, on chainrule itself.

``chainrule playground`` serves one static page (HTML, CSS and a few JavaScript modules shipped
in the package; nothing is fetched from elsewhere) and trains, for each open page, a network of
the page's choosing in a thread of its own, streaming what it looks like as it learns.

* :mod:`.points`: the data (generated sets, added points, CSV uploads), split and scaled;
* :mod:`.settings`: the setup, every value checked and every size capped;
* :mod:`.network`: network, loss, optimizer and L1/L2 from chainrule's parts;
* :mod:`.trainer`: one run, an epoch at a time; :mod:`.frames`: what the page draws;
* :mod:`.session`, :mod:`.registry`: a training thread per page, ended when the page goes;
* :mod:`.export`, :mod:`.script`: the trained run as a run folder and as a Python script;
* :mod:`.server`, :mod:`.commands`: the HTTP server and the ``playground`` command;
* the image mode (``/images``): :mod:`.images` (data sets, setup, uploaded classes),
  :mod:`.image_run` (MLP or CNN, trained an epoch at a time, and its frames),
  :mod:`.inside_view` (every layer's output for a drawing, one neuron's sum, a backward pass),
  :mod:`.image_script` and :mod:`.image_export` (``train.py`` and the run folder).
"""

from .points import PlaygroundError
from .server import PlaygroundServer
from .settings import Setup
