"""The ego car's motion: a kinematic bicycle for the path, a longitudinal model for speed.

Longitudinal model (per unit mass, SI units)::

    dv/dt = pedal · a_engine(v) − k · v² − c_rr · g        (pedal ≥ 0)
    dv/dt = pedal · max_brake − k · v² − c_rr · g          (pedal < 0)
    a_engine(v) = min(max_accel, P / (m · v))              k = ½ · ρ · C_d·A / m

``max_accel`` is the traction / torque limit at low speed, ``P / (m v)`` the power
limit above the crossover speed ``P / (m · max_accel)``; aerodynamic drag (``k v²``) and
rolling resistance (``c_rr g``) slow the car whatever the pedal, and never push a
standing car backwards. A constant pedal therefore settles at a terminal speed where
drive and resistance balance (:func:`terminal_speed` gives it in closed form), and a
driver who wants an acceleration ``a`` presses :func:`pedal_for` ``(a, v)``: the
feed-forward term that the scripted drivers, the meta-action driver and the modular
stack's controller share.

Default figures are those of a mid-size car: 1,500 kg, C_d·A = 0.7 m² (C_d ≈ 0.32 on
2.2 m²), c_rr = 0.015 (car tyres on asphalt), 100 kW; air density 1.225 kg/m³ (ISA sea
level).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from .traffic import EgoCar

AIR_DENSITY = 1.225  # kg/m³, ISA sea level
GRAVITY = 9.81  # m/s²


class CarParams(Protocol):
    """What the model reads from a config (:class:`.config.DrivingConfig` has it all)."""

    mass: float
    drag_area: float
    rolling_resistance: float
    engine_power: float
    max_accel: float
    max_brake: float


def drag_coefficient(car: CarParams) -> float:
    """``k`` of the drag deceleration ``k v²`` (1/m)."""
    return 0.5 * AIR_DENSITY * car.drag_area / car.mass


def resistance(car: CarParams, v: float) -> float:
    """Deceleration (m/s², ≥ 0) of drag and rolling resistance at speed ``v`` > 0."""
    if v <= 0.0:
        return 0.0
    return drag_coefficient(car) * v * v + car.rolling_resistance * GRAVITY


def engine_limit(car: CarParams, v: float) -> float:
    """The most acceleration the engine gives at speed ``v`` (traction, then power)."""
    power = car.engine_power / car.mass
    return min(car.max_accel, power / v) if v > 0.0 else car.max_accel


def acceleration(car: CarParams, pedal: float, v: float) -> float:
    """dv/dt for a pedal in [-1, 1] (positive throttle, negative brake) at speed ``v``."""
    drive = pedal * engine_limit(car, v) if pedal >= 0.0 else pedal * car.max_brake
    return drive - resistance(car, v)


def pedal_for(car: CarParams, accel: float, v: float) -> float:
    """The pedal in [-1, 1] that gives acceleration ``accel`` at speed ``v``: the
    resistance is added back as feed-forward, so asking for 0 holds the speed."""
    needed = accel + resistance(car, v)
    pedal = needed / engine_limit(car, v) if needed >= 0.0 else needed / car.max_brake
    return min(max(pedal, -1.0), 1.0)


def terminal_speed(car: CarParams, pedal: float) -> float:
    """The speed a constant throttle ``pedal`` in (0, 1] settles at (0 when it cannot beat
    rolling resistance), in closed form.

    Below the crossover speed ``v_c = P / (m · max_accel)`` the drive is constant and
    ``pedal · max_accel = k v² + c`` gives ``v = √((pedal · max_accel − c) / k)``; above
    it the drive is ``pedal · P / (m v)`` and ``k v³ + c v − pedal · P / m = 0``, a cubic
    with one real root (Cardano).
    """
    k, c = drag_coefficient(car), car.rolling_resistance * GRAVITY
    if pedal <= 0.0 or pedal * car.max_accel <= c:
        return 0.0
    v = math.sqrt((pedal * car.max_accel - c) / k)
    if v <= car.engine_power / (car.mass * car.max_accel):
        return v
    p, q = c / k, pedal * car.engine_power / (car.mass * k)  # v³ + p v − q = 0
    root = math.sqrt(q * q / 4.0 + p**3 / 27.0)
    return math.cbrt(q / 2.0 + root) + math.cbrt(q / 2.0 - root)


def bicycle_step(
    ego: EgoCar,
    steer_target: float,
    pedal: float,
    dt: float,
    substeps: int,
    wheelbase: float,
    steer_rate: float,
    max_speed: float,
    car: CarParams,
) -> None:
    """Advance ``ego`` in place by ``dt`` seconds in ``substeps`` equal steps.

    The path is a kinematic bicycle (centre-of-mass reference, slip angle β); the
    steering angle moves towards ``steer_target`` at most ``steer_rate`` rad/s; the speed
    follows :func:`acceleration` and never goes below zero (braking stops the car, it
    does not reverse it) nor above ``max_speed``. ``ego.accel`` is the mean acceleration
    over the step.
    """
    h = dt / substeps
    lr = 0.5 * wheelbase
    x, y, yaw, v, steer = ego.x, ego.y, ego.yaw, ego.v, ego.steer
    v0 = v
    for _ in range(substeps):
        steer += min(max(steer_target - steer, -steer_rate * h), steer_rate * h)
        v = min(max(v + acceleration(car, pedal, v) * h, 0.0), max_speed)
        beta = math.atan(lr / wheelbase * math.tan(steer))
        x += v * math.cos(yaw + beta) * h
        y += v * math.sin(yaw + beta) * h
        yaw += v / wheelbase * math.cos(beta) * math.tan(steer) * h
    ego.x, ego.y, ego.v, ego.steer = x, y, v, steer
    ego.yaw = (yaw + math.pi) % (2 * math.pi) - math.pi
    ego.accel = (v - v0) / dt
