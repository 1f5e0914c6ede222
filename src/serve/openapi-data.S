/* The OpenAPI document of airlock serve (docs/openapi.json), embedded in
 * the binary and served at GET /openapi.json. */
        .section .rodata
        .global srv_openapi_json
        .type srv_openapi_json, @object
        .balign 16
srv_openapi_json:
        .incbin "docs/openapi.json"
        .byte 0
        .size srv_openapi_json, . - srv_openapi_json
        .section .note.GNU-stack,"",@progbits
