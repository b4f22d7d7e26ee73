/**
 * vringj property-tests: the tools the jqwik properties and model-based tests share — an
 * address space that records every piece it hands out, and a dumper that prints a split ring
 * in virtio terms for failure messages. The properties themselves are tests of this module.
 */
module io.vringj.properties {
    requires io.vringj.swiotlb;
}
