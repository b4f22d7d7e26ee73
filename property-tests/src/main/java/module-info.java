/**
 * vringj property-tests: jqwik properties and model-based tests of the rings and the DMA layer
 * (tests of this module), and jcstress tests of the publication protocol (src/jcstress). The
 * tools they share (raw ring writers, ring dumpers, the recording address space) live in the
 * test-fixtures module.
 */
module io.vringj.properties {
    requires io.vringj.swiotlb;
}
