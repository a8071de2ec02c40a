include $(sort $(wildcard $(BR2_EXTERNAL_WGEDGE_PATH)/package/*/*.mk))
