/**
 * vringj swiotlb: the bounce pool in shared memory, the bouncing {@code DmaOps}, restricted
 * pools for coherent allocations, and the protected-guest set-up.
 */
module io.vringj.swiotlb {
    requires transitive io.vringj.dma;

    exports io.vringj.swiotlb;
}
