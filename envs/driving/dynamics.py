"""The ego car's motion: a kinematic bicycle for the path, a longitudinal model for speed.

Longitudinal model (per unit mass, SI units)::

    dv/dt = pedal · a_engine(v) − (1 − pedal) · c_e · v − k · v² − c_rr · g   (pedal ≥ 0)
    dv/dt = pedal · max_brake − c_e · v − k · v² − c_rr · g                    (pedal < 0)
    a_engine(v) = min(max_accel, P / (m · v))              k = ½ · ρ · C_d·A / m

``max_accel`` is the traction / torque limit at low speed, ``P / (m v)`` the power
limit above the crossover speed ``P / (m · max_accel)``; engine braking (``c_e v``, a car
in gear: it grows with engine speed and fades as the throttle opens), aerodynamic drag
(``k v²``) and rolling resistance (``c_rr g``) slow the car, and never push a standing car
backwards. A constant pedal therefore settles at a terminal speed where drive and
resistance balance (:func:`terminal_speed`), and a driver who wants an acceleration ``a``
presses :func:`pedal_for` ``(a, v)``: the feed-forward term that the scripted drivers, the
meta-action driver and the modular stack's controller share.

Engine braking is what makes the throttle set the speed, as in a real car in gear.
Without it drag alone is so weak at town speeds that 0.06 throttle held 10 m/s and 0.1
held 23 m/s; a Gaussian policy whose noise averaged to 10 m/s in training then drove its
mean action at ~30 m/s (brake +8 m/s² against throttle +3 m/s²: the noise's mean effect
is braking). With ``c_e`` = 0.08 /s the same mismatch is ~2 m/s.

Default figures are those of a mid-size car: 1,500 kg, C_d·A = 0.7 m² (C_d ≈ 0.32 on
2.2 m²), c_rr = 0.015 (car tyres on asphalt), 100 kW, engine braking 0.8 m/s² at 10 m/s;
air density 1.225 kg/m³ (ISA sea level).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Protocol

import numpy as np

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
    engine_braking: float
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
    return _drive(car, pedal, v) - resistance(car, v)


def _drive(car: CarParams, pedal: float, v: float) -> float:
    """What the pedal does: engine (less its braking while the throttle is part-open) or
    brakes (and the engine braking)."""
    braking = car.engine_braking * v if v > 0.0 else 0.0
    if pedal >= 0.0:
        return pedal * engine_limit(car, v) - (1.0 - pedal) * braking
    return pedal * car.max_brake - braking


def pedal_for(car: CarParams, accel: float, v: float) -> float:
    """The pedal in [-1, 1] that gives acceleration ``accel`` at speed ``v``: the
    resistance and engine braking are fed forward, so asking for 0 holds the speed."""
    braking = car.engine_braking * v if v > 0.0 else 0.0
    needed = accel + resistance(car, v) + braking  # what the pedal must add to a lift-off
    gain = engine_limit(car, v) + braking if needed >= 0.0 else car.max_brake
    return min(max(needed / gain, -1.0), 1.0)


def terminal_speed(car: CarParams, pedal: float) -> float:
    """The speed a constant throttle ``pedal`` in (0, 1] settles at (0 when it cannot beat
    rolling resistance), in closed form.

    With ``b = (1 − pedal) · c_e``: below the crossover speed ``v_c = P / (m · max_accel)``
    the drive is constant and ``k v² + b v + c − pedal · max_accel = 0`` is a quadratic;
    above it the drive is ``pedal · P / (m v)`` and ``k v³ + b v² + c v − pedal · P / m =
    0`` a cubic with one positive root (Descartes' rule of signs).
    """
    k, c = drag_coefficient(car), car.rolling_resistance * GRAVITY
    b = (1.0 - pedal) * car.engine_braking
    if pedal <= 0.0 or pedal * car.max_accel <= c:
        return 0.0
    drive = pedal * car.max_accel
    v = (-b + math.sqrt(b * b + 4.0 * k * (drive - c))) / (2.0 * k)
    if v <= car.engine_power / (car.mass * car.max_accel):
        return v
    roots = np.roots([k, b, c, -pedal * car.engine_power / car.mass])
    return float(max(r.real for r in roots if abs(r.imag) < 1e-9 and r.real > 0))


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
