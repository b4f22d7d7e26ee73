package io.vringj.ring;

/**
 * How many bytes each of a virtqueue's three areas needs, for the layout the features choose
 * (split, or packed with {@link VirtioFeatures#RING_PACKED}), so a caller can allocate ring
 * memory without knowing the layout. Alignments: descriptor area 16; driver area 2 (split) or
 * 4 (packed); device area 4.
 *
 * @param descriptorArea bytes of the descriptor table (split) or descriptor ring (packed)
 * @param driverArea bytes of the available ring (split) or driver event suppression (packed)
 * @param deviceArea bytes of the used ring (split) or device event suppression (packed)
 */
public record RingSizes(long descriptorArea, long driverArea, long deviceArea) {

    /**
     * @param features the negotiated features (only {@link VirtioFeatures#RING_PACKED} matters)
     * @param queueSize Q, valid for the layout
     * @return the sizes of the three areas
     * @throws IllegalArgumentException if Q is not valid for the layout
     */
    public static RingSizes of(long features, int queueSize) {
        if (VirtioFeatures.has(features, VirtioFeatures.RING_PACKED)) {
            PackedRing.checkQueueSize(queueSize);
            return new RingSizes(PackedRing.descriptorRingSize(queueSize), PackedRing.EVENT_SIZE, PackedRing.EVENT_SIZE);
        }
        SplitRing.checkQueueSize(queueSize);
        return new RingSizes(SplitRing.descriptorTableSize(queueSize), SplitRing.availRingSize(queueSize),
            SplitRing.usedRingSize(queueSize));
    }
}
