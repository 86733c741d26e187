"""The lens: watch a network learn. Each view is a function here and a ``chainrule`` command;
pictures need ``pip install 'chainrule[plot]'`` (matplotlib)."""

from .boundary import boundary_snapshots, plot_boundary
from .curves import plot_learning_curves, read_history
from .descent import descent_path, plot_descent
from .fitline import fit_line_path, least_squares, plot_fit_line
from .forward import explain_forward
from .forward_figure import forward_layout, plot_forward
from .inside import (
    GradientNorms,
    activations_of,
    first_layer_images,
    gradient_flow,
    plot_confusion,
    plot_first_layer,
    plot_gradient_flow,
    plot_histograms,
)
from .landscape import loss_along_line, loss_surface, plot_landscape
from .loss import LossExplanation, explain_loss, plot_loss
from .lr_finder import lr_find, plot_lr_find
from .race import SURFACES, plot_race, run_race, trajectory
from .text import (
    CharTransformer,
    attention_of,
    demo_model,
    next_character,
    recording_attention,
)
from .text_figure import plot_attention, plot_next_character
from .through_time import gradient_through_time, plot_through_time
from .trace import ChainRuleTrace, trace_backward, trace_model
from .trace_figure import plot_trace, trace_layout
