"""The street's vocabulary: its dimensions (metres), the kinds of objects on it, their surface
materials and the codes a ray-cast pixel holds (see monodepth_tf.synthetic)."""

# Street cross-section (|x|): road to the kerb, sidewalk beyond; lanes marked at 0 and +-4.
KERB_X, KERB_HEIGHT, EDGE_LINE_X, LANE_X = 6.0, 0.15, 4.0, 2.0
SKY_HALF_WIDTH, SKY_HEIGHT, SKY_MARGIN = 300.0, 60.0, 300.0

# Object kinds (boxes) and surface materials (textures).
SIDEWALK, BRICK_BUILDING, PLASTER_BUILDING, CAR_BODY, CAR_CABIN, POLE, BIN = range(7)
(ROAD, PAVING, CONCRETE, BRICK_UPPER, BRICK_GROUND, PLASTER_UPPER, PLASTER_GROUND, PAINT,
 CABIN, METAL, SKY) = range(11)
# (vertical faces, horizontal faces) of each kind
KIND_SURFACES = {SIDEWALK: (CONCRETE, PAVING), BRICK_BUILDING: (BRICK_UPPER, CONCRETE),
                 PLASTER_BUILDING: (PLASTER_UPPER, CONCRETE), CAR_BODY: (PAINT, PAINT),
                 CAR_CABIN: (CABIN, PAINT), POLE: (METAL, METAL), BIN: (METAL, METAL)}
GROUND_FLOOR = {BRICK_UPPER: BRICK_GROUND, PLASTER_UPPER: PLASTER_GROUND}
# Pixel codes below 0 (box faces are 6 * box + face, faces ordered -x, +x, -y, +y, -z, +z).
GROUND, SKY_X, SKY_Y, SKY_Z = -1, -2, -3, -4
NUM_SPECIAL = 4
