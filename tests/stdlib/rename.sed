# The standard's resources become pmrkit's drop-ins, nothing else changes
# (scripts/stdlib_tests.sh runs this over every extracted test, before the patches).
s/std::pmr::unsynchronized_pool_resource/pmrkit::multipool_resource/g
s/std::pmr::synchronized_pool_resource/pmrkit::concurrent_pool_resource/g
s/std::pmr::monotonic_buffer_resource/pmrkit::chunked_arena_resource/g
s/\<unsynchronized_pool_resource\>/multipool_resource/g
s/\<synchronized_pool_resource\>/concurrent_pool_resource/g
s/\<monotonic_buffer_resource\>/chunked_arena_resource/g
