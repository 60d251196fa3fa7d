// Public surface of the chat sample: chat.ChatService on a Connect router, backed by a topic.
export { CHAT_ROOM_HEADER, type ChatServiceOptions, chatMessageFromStored, createChatService } from "./chat-service.js";
